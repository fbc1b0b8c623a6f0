/* json.h - cJSON helpers: parsing with a nesting limit, bounded printing,
 * typed getters that tell missing from wrong type. */
#ifndef RE_JSON_H
#define RE_JSON_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include "buf.h"

#define RE_JSON_DEFAULT_DEPTH 32

/* Parses exactly one JSON value. -RE_EDEPTH past max_depth, -RE_EPARSE on
 * syntax errors with *errpos (byte offset) set when errpos is not NULL. */
int re_json_parse(cJSON **out, struct re_str text, int max_depth, size_t *errpos);
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
