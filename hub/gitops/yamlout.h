/* yamlout.h - YAML output through libyaml's emitter: cJSON values as YAML
 * documents with safe scalar quoting, and re-emission of user YAML bundles. */
#ifndef HUB_YAMLOUT_H
#define HUB_YAMLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "buf.h"

/*
 * Appends a YAML stream holding one document per element of docs (n >= 1;
 * documents after the first start with "---"). Object members are emitted in
 * their cJSON order (callers build them in a fixed order, so output is
 * deterministic); strings that a YAML 1.1 or 1.2 reader could take for
 * anything but that exact string (numbers, booleans, null, empty, leading or
 * trailing blanks, indicators, ": ", " #", quotes, "---") are quoted, and
 * strings holding newlines use a literal block (or double quotes when a block
 * cannot represent them). Lines are never folded.
 * Returns 0; -RE_EINVAL for invalid UTF-8 or a value cJSON cannot hold in
 * YAML (err says which); -RE_ETOOBIG past out->max; -RE_ENOMEM.
 */
int yamlout_docs(struct re_buf *out, const cJSON *const *docs, size_t n,
                 struct re_buf *err);
/* One document. */
int yamlout_doc(struct re_buf *out, const cJSON *doc, struct re_buf *err);

/*
 * Parses a YAML stream of Kubernetes manifests (text, len) with libyaml and
 * re-emits it through the emitter, so nothing but well-formed YAML reaches
 * a tree. Every document must be a mapping with string "apiVersion" and
 * "kind" (and "metadata"); empty documents are dropped; at least one must remain.
 * *n_docs (when not NULL) gets the number of documents written.
 * Returns 0; -RE_EPARSE with "line L column C: problem" in err; -RE_EINVAL
 * when a document is not a manifest; -RE_ETOOBIG past out->max.
 */
int yamlout_reemit_manifests(struct re_buf *out, const char *text, size_t len,
                             size_t *n_docs, struct re_buf *err);

/* True when a string must be quoted to read back as that string. */
bool yamlout_needs_quotes(const char *s, size_t len);

#endif
