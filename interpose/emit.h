/* The statistics emitter (after jemalloc's emitter.h): objects of key/value pairs and arrays
 * of rows, rendered as a table, one JSON object on one line, or glibc's malloc_info XML. It
 * knows layout only; what is written is stats.c's. No malloc: a buffer inside zp_em_t. */
#ifndef ZP_EMIT_H
#define ZP_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "zp_fmt.h"

typedef enum { ZP_EM_TABLE, ZP_EM_JSON, ZP_EM_XML } zp_em_mode_t;
/* BYTES: the table adds "(64K)" to exact multiples, XML says size= instead of count=. */
typedef enum { ZP_EM_COUNT, ZP_EM_BYTES } zp_em_unit_t;

typedef struct zp_em {
    zp_em_mode_t mode;
    int fd;
    FILE *fp;
    bool failed;
    int depth;
    bool first; /* JSON: no comma before the next member */
    const char *arr_key, *obj_key[8];
    char out[4096]; /* the whole JSON object in one write(2), usually */
    zp_buf_t b;
} zp_em_t;

/* Output goes to fd with write(2), or to fp when it is not NULL (malloc_info's stream). */
void zp_em_begin(zp_em_t *e, zp_em_mode_t mode, int fd, FILE *fp);
/* Closes the document and flushes: 0, or -1 if any write failed. */
int zp_em_end(zp_em_t *e);

/* An object: a JSON key, an XML element, or a table title line over indented members. */
void zp_em_obj_begin(zp_em_t *e, const char *key, const char *title);
void zp_em_obj_end(zp_em_t *e);
void zp_em_u64(zp_em_t *e, const char *key, uint64_t v, zp_em_unit_t unit);
/* raw: the JSON form (a number, true/false; NULL for a string); text: the table and XML form. */
void zp_em_value(zp_em_t *e, const char *key, const char *raw, const char *text);
void zp_em_bool(zp_em_t *e, const char *key, bool v);

/* An array of rows; cols names the columns (the table's header line). */
void zp_em_arr_begin(zp_em_t *e, const char *key, const char *title, const char *const *cols,
                     int ncols);
void zp_em_arr_end(zp_em_t *e);
/* elem: the XML element of one row. */
void zp_em_row_begin(zp_em_t *e, const char *elem);
void zp_em_cell(zp_em_t *e, const char *key, uint64_t v, zp_em_unit_t unit);
void zp_em_row_end(zp_em_t *e);

#endif
