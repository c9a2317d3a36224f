/* Intrusive doubly-linked lists: the one shape every list of the allocator has (a shard's free
 * and empty slots, a pool's thread caches, the interposer's counted threads). A list is a
 * pointer to its first element; each element holds a next and a prev pointer, whose member
 * names the caller gives, so that one element can sit in several lists. Push at the head,
 * unlink in O(1) from anywhere, the element's pointers cleared. No locks: the caller holds
 * the list's. Each argument is evaluated once. */
#ifndef ZP_LIST_H
#define ZP_LIST_H

#include <stddef.h>

#define ZP_LIST_PUSH(headp, elem, next, prev)                                                  \
    do {                                                                                       \
        __typeof__(headp) zp_lh_ = (headp);                                                    \
        __typeof__(elem) zp_le_ = (elem);                                                      \
        zp_le_->prev = NULL;                                                                   \
        zp_le_->next = *zp_lh_;                                                                \
        if (*zp_lh_ != NULL)                                                                   \
            (*zp_lh_)->prev = zp_le_;                                                          \
        *zp_lh_ = zp_le_;                                                                      \
    } while (0)

#define ZP_LIST_UNLINK(headp, elem, next, prev)                                                \
    do {                                                                                       \
        __typeof__(headp) zp_lh_ = (headp);                                                    \
        __typeof__(elem) zp_le_ = (elem);                                                      \
        if (zp_le_->prev != NULL)                                                              \
            zp_le_->prev->next = zp_le_->next;                                                 \
        else                                                                                   \
            *zp_lh_ = zp_le_->next;                                                            \
        if (zp_le_->next != NULL)                                                              \
            zp_le_->next->prev = zp_le_->prev;                                                 \
        zp_le_->next = zp_le_->prev = NULL;                                                    \
    } while (0)

#endif
