/* fuzz_conf.c - the INI config parser (re_conf_parse) and the two programs'
 * config loaders on top of it (hub.conf through hub_config_load, agent.conf
 * through agent_config_load): never crash, errors always say file:line, and
 * what parses is reachable through re_conf_get. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../../agent/config.h"
#include "../../hub/hub.h"
#include "buf.h"
#include "conf.h"
#include "error.h"
#include "fuzz.h"

static const struct re_conf_key known[] = {
    { "server", "listen", RE_CONF_STRING },
    { "server", "max_body", RE_CONF_UINT },
    { "log", "debug", RE_CONF_BOOL },
    { "", "interval", RE_CONF_DURATION },
    { NULL, NULL, RE_CONF_STRING },
};

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0);
    while (size) {
        ssize_t n = write(fd, data, size);
        FUZZ_CHECK(n > 0);
        data += n;
        size -= (size_t)n;
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct re_conf *c = NULL;
    struct re_buf err;
    char path[512];
    int r;

    re_buf_init(&err, 4096);
    r = re_conf_parse(&c, "fuzz.conf", (struct re_str){ (const char *)data, size }, &err);
    if (r < 0) {
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK(err.len > 0 && strncmp(err.ptr, "fuzz.conf", 9) == 0);
    } else {
        FUZZ_CHECK(c != NULL);
        for (size_t i = 0; i < c->n; i++) {
            const struct re_conf_entry *e = &c->entries[i];
            FUZZ_CHECK(e->section && e->key && e->value && e->line >= 1);
            FUZZ_CHECK(re_conf_get(c, e->section, e->key) != NULL);
        }
        re_buf_reset(&err);
        if (re_conf_validate(c, known, &err) < 0)
            FUZZ_CHECK(err.len > 0);
        re_conf_free(c);
    }

    /* The same bytes as the hub's and the agent's configuration files. */
    snprintf(path, sizeof(path), "%s/hub.conf", fuzz_tmpdir());
    write_file(path, data, size);
    struct hub_config hc;
    hub_config_defaults(&hc);
    re_buf_reset(&err);
    if (hub_config_load(&hc, fuzz_tmpdir(), &err) < 0)
        FUZZ_CHECK(err.len > 0);
    hub_config_release(&hc);

    struct agent_config ac;
    agent_config_defaults(&ac);
    re_buf_reset(&err);
    if (agent_config_load(&ac, path, &err) < 0)
        FUZZ_CHECK(err.len > 0);
    agent_config_release(&ac);

    re_buf_release(&err);
    return 0;
}
