/* Eight bytes past the end of a 1000000-byte buffer. */
#include "slack_overflow.h"

int main(void)
{
    return slack_overflow_main(8);
}
