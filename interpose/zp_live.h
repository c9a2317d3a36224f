/* Live statistics for services (live.c): the statistics file made absolute and created at
 * start-up, held open across a privilege drop, rewritten every ZEROPOOL_STATS_INTERVAL by a
 * timer thread, and written one last time at exit or on SIGTERM/SIGINT. */
#ifndef ZP_LIVE_H
#define ZP_LIVE_H

#include <stdint.h>

/* A process younger than this is not "long-lived" for the coverage note (seconds). */
#define ZP_IP_LONG_LIVED_S 10
/* Below this resident size the coverage note says nothing (bytes). */
#define ZP_IP_COVERAGE_MIN_RSS ((uint64_t)8 << 20)

/* Seconds since the library started in this process (since fork in a child). */
uint64_t zp_ip_live_uptime(void);
/* The last write: to the statistics file, or stderr when there is none or it fails. */
void zp_ip_live_final(void);
/* One emitter run into fd (stats.c); 0 or -1. */
int zp_ip_stats_emit_fd(int fd, int format);

#endif
