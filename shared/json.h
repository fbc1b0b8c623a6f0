/* json.h - cJSON helpers: strict parsing with a nesting limit, bounded
 * printing, typed getters that tell missing from wrong type. */
#ifndef RE_JSON_H
#define RE_JSON_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include "buf.h"

#define RE_JSON_DEFAULT_DEPTH 32

/* Why a text was refused, for an error message naming the place. */
struct re_json_error {
    size_t pos;                      /* byte offset of the offending token */
    const char *why;                 /* static: "syntax error", "duplicate key", ... */
    char key[64];                    /* the duplicate key (truncated), else "" */
};

/* Parses exactly one JSON value, strictly: besides syntax errors it refuses
 * a NUL byte anywhere in text, the escape \u0000 in a string (a C string
 * would end there) and an object with two members of the same name (cJSON
 * would keep the first). -RE_EDEPTH past max_depth, -RE_EPARSE for all the
 * rest, with *errpos (byte offset) set when errpos is not NULL; for a
 * duplicate key errpos is the offset of its second occurrence. */
int re_json_parse(cJSON **out, struct re_str text, int max_depth, size_t *errpos);
/* The same, telling why in *err (when not NULL; written on failure only). */
int re_json_parse_err(cJSON **out, struct re_str text, int max_depth,
                      struct re_json_error *err);
/* Appends compact JSON to out (bounded by out->max). */
int re_json_print(struct re_buf *out, const cJSON *json);

/* Getters: 0 and *out set; -RE_ENOENT when absent (or JSON null);
 * -RE_EINVAL when present with another type. */
int re_json_get_string(const char **out, const cJSON *obj, const char *key);
int re_json_get_int(long long *out, const cJSON *obj, const char *key);
int re_json_get_bool(bool *out, const cJSON *obj, const char *key);

/* The first member of obj whose name is not in allowed (NULL-terminated), or NULL. */
const char *re_json_unknown_key(const cJSON *obj, const char *const *allowed);

#endif
