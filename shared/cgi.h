/* cgi.h - the header block a CGI program writes before its body (git
 * http-backend, for the hub's git endpoint and the agent's mirror):
 * "Name: value" lines, then a blank line. One parser for both daemons. */
#ifndef RE_CGI_H
#define RE_CGI_H

#include <stddef.h>
#include "buf.h"

struct re_cgi_head {
    int status;                  /* "Status: NNN ...", 200 when absent */
    struct re_str content_type;  /* each points into the block; empty when absent */
    struct re_str cache_control;
    struct re_str expires;
    struct re_str pragma;
    size_t head_len;             /* bytes up to and including the blank line */
};

/* Parses the start of text. 0 with *h when the block is complete;
 * -RE_EAGAIN while the blank line has not arrived (and the block is within
 * max bytes); -RE_ETOOBIG past max without one; -RE_EPARSE for a line that
 * is no header (no colon, an empty name, a control character in it). A
 * Status below 200 or above 599, or not a number, is -RE_EPARSE too. */
int re_cgi_parse_head(struct re_cgi_head *h, const char *text, size_t len, size_t max);

#endif
