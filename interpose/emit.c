/* The statistics emitter: one call sequence (objects, arrays of rows, values) rendered as a
 * table of indented "key  value" lines with right-aligned columns for rows, one JSON object on
 * one line, or glibc's malloc_info XML (<total type="key" count|size="v"/>). Output goes
 * through a 4 KiB buffer, flushed to an fd (write(2)) or a FILE (malloc_info's caller's stream). */
#include "emit.h"

#include <string.h>
#include <unistd.h>

#include "zeropool.h"
#include "zp_options.h"

#define EM_COL 12 /* width of a table column */

static void ip_em_flush(zp_em_t *e)
{
    if (e->fp != NULL) {
        if (fwrite(e->b.p, 1, e->b.len, e->fp) != e->b.len)
            e->failed = true;
        e->b.len = 0;
    } else if (zp_buf_flush(&e->b, e->fd) != 0) {
        e->failed = true;
    }
}

/* Room for one more line; every emitted piece is far shorter than the buffer. */
static void ip_em_room(zp_em_t *e)
{
    if (e->b.cap - e->b.len < ZP_PATH_MAX + 128)
        ip_em_flush(e);
}

static void ip_em_indent(zp_em_t *e)
{
    for (int i = 0; i < e->depth; i++)
        zp_buf_str(&e->b, "  ");
}

static void ip_em_json_key(zp_em_t *e, const char *key)
{
    if (!e->first)
        zp_buf_chr(&e->b, ',');
    e->first = false;
    if (key != NULL) {
        zp_buf_chr(&e->b, '"');
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, "\":");
    }
}

static void ip_em_xml_text(zp_buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': zp_buf_str(b, "&amp;"); break;
        case '<': zp_buf_str(b, "&lt;"); break;
        case '>': zp_buf_str(b, "&gt;"); break;
        case '"': zp_buf_str(b, "&quot;"); break;
        default: zp_buf_chr(b, *s); break;
        }
    }
}

/* The table's "key    " column. */
static void ip_em_table_key(zp_em_t *e, const char *key)
{
    ip_em_indent(e);
    zp_buf_str(&e->b, key);
    size_t n = strlen(key);
    for (size_t i = n; i < 22; i++)
        zp_buf_chr(&e->b, ' ');
    zp_buf_chr(&e->b, ' ');
}

void zp_em_begin(zp_em_t *e, zp_em_mode_t mode, int fd, FILE *fp)
{
    memset(e, 0, sizeof *e);
    e->mode = mode;
    e->fd = fd;
    e->fp = fp;
    e->first = true;
    zp_buf_t b = ZP_BUF_INIT(e->out);
    e->b = b;
    switch (mode) {
    case ZP_EM_JSON:
        zp_buf_str(&e->b, "{\"zeropool\":{");
        e->depth = 1;
        break;
    case ZP_EM_XML:
        zp_buf_str(&e->b, "<malloc version=\"zeropool-" ZEROPOOL_VERSION "\" pid=\"");
        zp_buf_u64(&e->b, (uint64_t)getpid());
        zp_buf_str(&e->b, "\">\n");
        break;
    case ZP_EM_TABLE:
        zp_buf_str(&e->b, "zeropool: statistics (pid ");
        zp_buf_u64(&e->b, (uint64_t)getpid());
        zp_buf_str(&e->b, ", version " ZEROPOOL_VERSION ")\n");
        e->depth = 1;
        break;
    }
}

int zp_em_end(zp_em_t *e)
{
    ip_em_room(e);
    if (e->mode == ZP_EM_JSON)
        zp_buf_str(&e->b, "}}\n");
    else if (e->mode == ZP_EM_XML)
        zp_buf_str(&e->b, "</malloc>\n");
    ip_em_flush(e);
    return e->failed ? -1 : 0;
}

/* Opens an object ('{') or an array ('['): a JSON key and bracket, an XML tag, or a table
 * title line. */
static void ip_em_open(zp_em_t *e, const char *key, const char *title, char bracket)
{
    ip_em_room(e);
    switch (e->mode) {
    case ZP_EM_JSON:
        ip_em_json_key(e, key);
        zp_buf_chr(&e->b, bracket);
        e->first = true;
        break;
    case ZP_EM_XML:
        zp_buf_chr(&e->b, '<');
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, ">\n");
        break;
    case ZP_EM_TABLE:
        ip_em_indent(e);
        zp_buf_str(&e->b, title);
        zp_buf_str(&e->b, ":\n");
        break;
    }
}

/* Closes what ip_em_open opened: the JSON bracket or the XML element named key; a table
 * needs no closing line. */
static void ip_em_close(zp_em_t *e, const char *key, char bracket)
{
    ip_em_room(e);
    if (e->mode == ZP_EM_JSON) {
        zp_buf_chr(&e->b, bracket);
        e->first = false;
    } else if (e->mode == ZP_EM_XML) {
        zp_buf_str(&e->b, "</");
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, ">\n");
    }
}

void zp_em_obj_begin(zp_em_t *e, const char *key, const char *title)
{
    ip_em_open(e, key, title, '{');
    e->obj_key[e->depth & 7] = key;
    e->depth++;
}

void zp_em_obj_end(zp_em_t *e)
{
    e->depth--;
    ip_em_close(e, e->obj_key[e->depth & 7], '}');
}

void zp_em_u64(zp_em_t *e, const char *key, uint64_t v, zp_em_unit_t unit)
{
    ip_em_room(e);
    switch (e->mode) {
    case ZP_EM_JSON:
        ip_em_json_key(e, key);
        zp_buf_u64(&e->b, v);
        break;
    case ZP_EM_XML:
        zp_buf_str(&e->b, "<total type=\"");
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, unit == ZP_EM_BYTES ? "\" size=\"" : "\" count=\"");
        zp_buf_u64(&e->b, v);
        zp_buf_str(&e->b, "\"/>\n");
        break;
    case ZP_EM_TABLE:
        ip_em_table_key(e, key);
        zp_buf_u64(&e->b, v);
        if (unit == ZP_EM_BYTES && v >= 1024) {
            char h[32];
            zp_buf_t hb = ZP_BUF_INIT(h);
            zp_buf_size(&hb, v);
            if (hb.len > 0 && h[hb.len - 1] >= 'A') { /* an exact K, M or G */
                zp_buf_str(&e->b, " (");
                zp_buf_mem(&e->b, h, hb.len);
                zp_buf_chr(&e->b, ')');
            }
        }
        zp_buf_chr(&e->b, '\n');
        break;
    }
}

void zp_em_value(zp_em_t *e, const char *key, const char *raw, const char *text)
{
    ip_em_room(e);
    switch (e->mode) {
    case ZP_EM_JSON:
        ip_em_json_key(e, key);
        if (raw != NULL) {
            zp_buf_str(&e->b, raw);
        } else {
            zp_buf_chr(&e->b, '"');
            zp_buf_json_str(&e->b, text);
            zp_buf_chr(&e->b, '"');
        }
        break;
    case ZP_EM_XML:
        zp_buf_str(&e->b, "<total type=\"");
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, "\" value=\"");
        ip_em_xml_text(&e->b, text);
        zp_buf_str(&e->b, "\"/>\n");
        break;
    case ZP_EM_TABLE:
        ip_em_table_key(e, key);
        zp_buf_str(&e->b, text);
        zp_buf_chr(&e->b, '\n');
        break;
    }
}

void zp_em_bool(zp_em_t *e, const char *key, bool v)
{
    zp_em_value(e, key, v ? "true" : "false", v ? "on" : "off");
}

void zp_em_arr_begin(zp_em_t *e, const char *key, const char *title, const char *const *cols,
                     int ncols)
{
    e->arr_key = key;
    ip_em_open(e, key, title, '[');
    if (e->mode != ZP_EM_TABLE)
        return;
    ip_em_indent(e);
    for (int i = 0; i < ncols; i++) {
        for (size_t k = strlen(cols[i]); k < EM_COL; k++)
            zp_buf_chr(&e->b, ' ');
        zp_buf_str(&e->b, cols[i]);
    }
    zp_buf_chr(&e->b, '\n');
}

void zp_em_arr_end(zp_em_t *e)
{
    ip_em_close(e, e->arr_key, ']');
}

void zp_em_row_begin(zp_em_t *e, const char *elem)
{
    ip_em_room(e);
    if (e->mode == ZP_EM_JSON) {
        ip_em_json_key(e, NULL);
        zp_buf_chr(&e->b, '{');
        e->first = true;
    } else if (e->mode == ZP_EM_XML) {
        zp_buf_chr(&e->b, '<');
        zp_buf_str(&e->b, elem);
    } else {
        ip_em_indent(e);
    }
}

void zp_em_cell(zp_em_t *e, const char *key, uint64_t v, zp_em_unit_t unit)
{
    if (e->mode == ZP_EM_JSON) {
        ip_em_json_key(e, key);
        zp_buf_u64(&e->b, v);
    } else if (e->mode == ZP_EM_XML) {
        zp_buf_chr(&e->b, ' ');
        zp_buf_str(&e->b, key);
        zp_buf_str(&e->b, "=\"");
        zp_buf_u64(&e->b, v);
        zp_buf_chr(&e->b, '"');
    } else {
        char cell[32];
        zp_buf_t c = ZP_BUF_INIT(cell);
        if (unit == ZP_EM_BYTES)
            zp_buf_size(&c, v);
        else
            zp_buf_u64(&c, v);
        for (size_t k = c.len; k < EM_COL; k++)
            zp_buf_chr(&e->b, ' ');
        zp_buf_mem(&e->b, cell, c.len);
    }
}

void zp_em_row_end(zp_em_t *e)
{
    if (e->mode == ZP_EM_JSON) {
        zp_buf_chr(&e->b, '}');
        e->first = false;
    } else if (e->mode == ZP_EM_XML) {
        zp_buf_str(&e->b, "/>\n");
    } else {
        zp_buf_chr(&e->b, '\n');
    }
}
