/* test_render.c - render and yamlout: hostile strings round-trip, every
 * rendered directory builds with `kubectl kustomize`, output is deterministic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>
#include <cjson/cJSON.h>
#include "../../hub/gitops/render.h"
#include "../../hub/gitops/yamlout.h"
#include "error.h"
#include "testlib.h"

static const char *const hostile[] = {
    "a: b\n---\nkind: Secret", "#x", "{\"k\":1}", "'q\"", "", " lead", "trail ",
    "true", "no", "Yes", "OFF", "null", "~", "0755", "1e3", "0x1F", "12:30",
    "2001-12-14", ".5", "+1", "-1", "=", "<<", "- item", "&anchor", "*alias",
    "!tag", "|", ">", "%x", "@x", "`x", "---", "...", "a #b", "key: value",
    "multi\nline\n", "two trailing\n\n", "\n", "\nlead break", "\ttab", "ünïcødé ✓",
    "[1,2]", "? q", "a:b", "x\n  indented\n---\n...\n", "}", "a\\b", "\"dq\"",
    "line with trailing space \nnext", NULL,
};

/* ---- a small reader over libyaml's document loader ---- */

static const yaml_node_t *ymap_get(yaml_document_t *d, const yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static char *yscalar(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    char *s = malloc(n->data.scalar.length + 1);
    memcpy(s, n->data.scalar.value, n->data.scalar.length);
    s[n->data.scalar.length] = '\0';
    return s;
}

static size_t ymap_len(const yaml_node_t *m)
{
    return m && m->type == YAML_MAPPING_NODE
               ? (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start) : 0;
}

struct ydocs {
    yaml_document_t d[256];
    size_t n;
};

static void yload(struct ydocs *ds, const char *text, size_t len)
{
    yaml_parser_t p;
    CHECK(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    ds->n = 0;
    for (;;) {
        CHECK(ds->n < 256);
        if (!yaml_parser_load(&p, &ds->d[ds->n])) {
            fprintf(stderr, "yaml parse error: %s\n", p.problem);
            CHECK(0);
        }
        if (!yaml_document_get_root_node(&ds->d[ds->n])) {
            yaml_document_delete(&ds->d[ds->n]);
            break;
        }
        ds->n++;
    }
    yaml_parser_delete(&p);
}

static void yfree(struct ydocs *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        yaml_document_delete(&ds->d[i]);
    ds->n = 0;
}

/* ---- helpers ---- */

static char *run(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    CHECK(f);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static bool have_cmd(const char *cmd)
{
    char c[256];
    snprintf(c, sizeof(c), "command -v %s >/dev/null 2>&1", cmd);
    return system(c) == 0;
}

/* ---- yamlout ---- */

static void test_yamlout_hostile_roundtrip(void)
{
    for (size_t i = 0; hostile[i]; i++) {
        struct re_buf out, err;
        re_buf_init(&out, 1 << 20);
        re_buf_init(&err, 1024);
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "k", hostile[i]);
        cJSON_AddStringToObject(doc, hostile[i], "as-key");
        CHECK_EQ_INT(yamlout_doc(&out, doc, &err), 0);
        struct ydocs ds;
        yload(&ds, out.ptr, out.len);
        if (ds.n != 1)
            fprintf(stderr, "value %zu gave:\n%s\n", i, out.ptr);
        CHECK_EQ_INT(ds.n, 1);
        const yaml_node_t *root = yaml_document_get_root_node(&ds.d[0]);
        size_t expect_keys = strcmp(hostile[i], "k") == 0 ? 1 : 2;
        CHECK_EQ_INT(ymap_len(root), expect_keys);
        const yaml_node_t *v = ymap_get(&ds.d[0], root, "k");
        char *s = yscalar(v);
        if (!s || strcmp(s, hostile[i]) != 0)
            fprintf(stderr, "value %zu: emitted\n%s\n", i, out.ptr);
        CHECK_EQ_STR(s, hostile[i]);
        /* Plain scalars must not resolve to another type. */
        if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            CHECK(!yamlout_needs_quotes(hostile[i], strlen(hostile[i])));
        free(s);
        s = yscalar(ymap_get(&ds.d[0], root, hostile[i]));
        CHECK_EQ_STR(s, "as-key");
        free(s);
        yfree(&ds);
        cJSON_Delete(doc);
        re_buf_release(&out);
        re_buf_release(&err);
    }
}

static void test_yamlout_types_and_docs(void)
{
    struct re_buf out, err;
    re_buf_init(&out, 1 << 20);
    re_buf_init(&err, 1024);
    cJSON *a = cJSON_Parse("{\"n\":53,\"f\":1.5,\"b\":false,\"z\":null,\"e\":[],\"o\":{},"
                           "\"s\":\"53\"}");
    cJSON *b = cJSON_Parse("{\"x\":\"y\"}");
    const cJSON *docs[2] = { a, b };
    CHECK_EQ_INT(yamlout_docs(&out, docs, 2, &err), 0);
    CHECK(strstr(out.ptr, "'n': 53\n"));   /* YAML 1.1 boolean word */
    CHECK(strstr(out.ptr, "b: false\n"));
    CHECK(strstr(out.ptr, "e: []\n"));
    CHECK(strstr(out.ptr, "o: {}\n"));
    CHECK(strstr(out.ptr, "s: '53'\n"));
    CHECK(strstr(out.ptr, "\n---\nx: 'y'\n"));
    struct ydocs ds;
    yload(&ds, out.ptr, out.len);
    CHECK_EQ_INT(ds.n, 2);
    yfree(&ds);
    /* Invalid UTF-8 is refused, and the buffer is left as it was. */
    size_t before = out.len;
    cJSON *bad = cJSON_CreateObject();
    cJSON_AddStringToObject(bad, "k", "\xff\xfe");
    CHECK_EQ_INT(yamlout_doc(&out, bad, &err), -RE_EINVAL);
    CHECK_EQ_INT(out.len, before);
    cJSON_Delete(bad);
    cJSON_Delete(a);
    cJSON_Delete(b);
    re_buf_release(&out);
    re_buf_release(&err);
}

static void test_yamlout_reemit(void)
{
    struct re_buf out, err;
    size_t n = 0;
    re_buf_init(&out, 1 << 20);
    re_buf_init(&err, 1024);
    const char *ok = "# comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
                     "data: {port: '8080', n: 1}\n---\n---\napiVersion: v1\nkind: Secret\n"
                     "metadata:\n  name: b\n";
    CHECK_EQ_INT(yamlout_reemit_manifests(&out, ok, strlen(ok), &n, &err), 0);
    CHECK_EQ_INT(n, 2);
    CHECK(strstr(out.ptr, "'8080'"));
    CHECK(!strstr(out.ptr, "comment"));
    re_buf_reset(&out);
    const char *bad[] = { "a: [", "- 1\n- 2\n", "kind: X\nmetadata: {}\n", "",
                          "apiVersion: v1\nkind: X\n", NULL };
    for (size_t i = 0; bad[i]; i++) {
        int rc = yamlout_reemit_manifests(&out, bad[i], strlen(bad[i]), NULL, &err);
        CHECK(rc == -RE_EPARSE || rc == -RE_EINVAL);
        CHECK(err.len > 0);
        CHECK_EQ_INT(out.len, 0);
    }
    /* Deep nesting is refused before the recursive dumper sees it. */
    struct re_buf deep;
    re_buf_init(&deep, 1 << 20);
    for (int i = 0; i < 5000; i++)
        re_buf_append_str(&deep, "[");
    CHECK(yamlout_reemit_manifests(&out, deep.ptr, deep.len, NULL, &err) < 0);
    re_buf_release(&deep);
    re_buf_release(&out);
    re_buf_release(&err);
}

/* ---- render ---- */

static struct render_kv g_meta[64];
static struct render_kv g_conf[8];
static char g_keys[64][32];

static const char *const pos_owners[] = { "bob@example.com", "alice@example.com" };
static const struct render_namespace g_ns[] = {
    { "pos", pos_owners, 2, "4", "8Gi", "50", false, false, false, NULL, 0 },
    { "loyalty", NULL, 0, NULL, NULL, NULL, false, false, false, NULL, 0 },
};

static const char deploy_yaml[] =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: menu-board\n"
    "spec:\n  selector:\n    matchLabels: {app: menu-board}\n  template:\n"
    "    metadata:\n      labels: {app: menu-board}\n    spec:\n      containers:\n"
    "      - name: web\n        image: registry.example.com/menu-board:1.0\n";
static const char svc_yaml[] =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: menu-board\nspec:\n"
    "  selector: {app: menu-board}\n  ports:\n  - port: 80\n";
static const struct render_file g_base[] = {
    { "deployment.yaml", deploy_yaml, sizeof(deploy_yaml) - 1 },
    { "service.yaml", svc_yaml, sizeof(svc_yaml) - 1 },
    { "README.md", "# menu board\n", 13 },
};

static const struct render_app g_apps[] = {
    { .name = "pos-api", .namespace_ = "pos", .version = "v2", .kind = RENDER_SRC_GIT,
      .git_url = "https://git.example.com/pos/api.git", .git_ref = "v2.1.0",
      .git_path = "./deploy/edge" },
    { .name = "menu-board", .namespace_ = "loyalty", .version = "1.4.2",
      .kind = RENDER_SRC_BASE, .base_files = g_base, .n_base_files = 3,
      .image_name = "registry.example.com/menu-board", .image_tag = "1.4.2" },
};

static const char policy_yaml[] =
    "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: require-labels\n"
    "spec:\n  validationFailureAction: Audit\n  rules:\n  - name: check\n"
    "    match: {any: [{resources: {kinds: [Pod]}}]}\n"
    "    validate:\n      message: \"label 'app' is required\"\n"
    "      pattern: {metadata: {labels: {app: \"?*\"}}}\n";
static const struct render_policy g_pol[] = { { "require-labels", policy_yaml } };

static size_t n_hostile(void)
{
    size_t n = 0;
    while (hostile[n])
        n++;
    return n;
}

static struct render_cluster sample(const char *name)
{
    size_t n = n_hostile();
    CHECK(n + 2 <= 64);
    for (size_t i = 0; i < n; i++) {
        snprintf(g_keys[i], sizeof(g_keys[i]), "h%02zu", i);
        g_meta[i] = (struct render_kv){ g_keys[i], hostile[i] };
    }
    g_meta[n] = (struct render_kv){ "region", "central" };
    g_conf[0] = (struct render_kv){ "log-level", "debug" };
    g_conf[1] = (struct render_kv){ "port", "8080" };
    g_conf[2] = (struct render_kv){ "note", "a: b\n---\nkind: Secret" };
    g_conf[3] = (struct render_kv){ "json", "{\"k\":1}" };
    g_conf[4] = (struct render_kv){ "cluster.region", "overridden by metadata" };
    return (struct render_cluster){
        .name = name, .metadata = g_meta, .n_metadata = n + 1,
        .config = g_conf, .n_config = 5,
        .namespaces = g_ns, .n_namespaces = 2, .apps = g_apps, .n_apps = 2,
        .policies = g_pol, .n_policies = 1,
    };
}

static const char *expected_config(const char *key)
{
    size_t n = n_hostile();
    if (strncmp(key, "cluster.h", 9) == 0) {
        unsigned long i = strtoul(key + 9, NULL, 10);
        return i < n ? hostile[i] : NULL;
    }
    if (strcmp(key, "cluster.region") == 0)
        return "central";
    for (size_t i = 0; i < 4; i++)
        if (strcmp(key, g_conf[i].key) == 0)
            return g_conf[i].value;
    return NULL;
}

static char *kustomize(const char *dir, int *status)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "kubectl kustomize '%s' 2>&1", dir);
    return run(cmd, status);
}

static void check_configmaps_libyaml(const char *out, size_t *n_cm)
{
    struct ydocs ds;
    yload(&ds, out, strlen(out));
    *n_cm = 0;
    for (size_t i = 0; i < ds.n; i++) {
        yaml_document_t *d = &ds.d[i];
        const yaml_node_t *root = yaml_document_get_root_node(d);
        char *kind = yscalar(ymap_get(d, root, "kind"));
        const yaml_node_t *md = ymap_get(d, root, "metadata");
        char *cl = yscalar(ymap_get(d, ymap_get(d, md, "labels"), "resedge.io/cluster"));
        CHECK_EQ_STR(cl, "store-0042");     /* labels on everything */
        free(cl);
        if (strcmp(kind, "ConfigMap") == 0) {
            (*n_cm)++;
            const yaml_node_t *data = ymap_get(d, root, "data");
            CHECK_EQ_INT(ymap_len(data), n_hostile() + 1 + 4);
            for (yaml_node_pair_t *p = data->data.mapping.pairs.start;
                 p < data->data.mapping.pairs.top; p++) {
                char *k = yscalar(yaml_document_get_node(d, p->key));
                char *v = yscalar(yaml_document_get_node(d, p->value));
                const char *want = expected_config(k);
                if (!want || strcmp(v, want) != 0)
                    fprintf(stderr, "key %s: got [%s]\n", k, v);
                CHECK_EQ_STR(v, want);
                free(k);
                free(v);
            }
        }
        free(kind);
    }
    yfree(&ds);
}

/* An independent reader: PyYAML, when installed, over kustomize's output
 * (BaseLoader: go-yaml writes a plain "=", which PyYAML's SafeLoader reads as
 * its "value" tag) and over our own configmap.yaml files (SafeLoader). */
static void check_configmaps_pyyaml(const char *dir)
{
    int st;
    char *r = run("python3 -c 'import yaml' 2>/dev/null && echo yes", &st);
    bool have = strncmp(r, "yes", 3) == 0;
    free(r);
    if (!have) {
        fprintf(stderr, "# PyYAML not installed: cross-check skipped\n");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "kubectl kustomize '%s' | python3 -c 'import sys, yaml, json; "
             "print(json.dumps([d for d in yaml.load_all(sys.stdin, Loader=yaml.BaseLoader) if d]))'"
             " && python3 -c 'import sys, yaml, json; "
             "print(json.dumps([yaml.safe_load(open(sys.argv[1]))]))' '%s'/namespaces/pos/configmap.yaml",
             dir, dir);
    char *out = run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    const char *end = out;
    size_t n_cm = 0;
    for (int pass = 0; pass < 2; pass++) {
        cJSON *docs = cJSON_ParseWithOpts(end, &end, 0);
        CHECK(docs);
        cJSON *d;
        cJSON_ArrayForEach(d, docs) {
            if (strcmp(cJSON_GetObjectItem(d, "kind")->valuestring, "ConfigMap") != 0)
                continue;
            n_cm++;
            cJSON *kv;
            size_t n = 0;
            cJSON_ArrayForEach(kv, cJSON_GetObjectItem(d, "data")) {
                CHECK(cJSON_IsString(kv));
                CHECK_EQ_STR(kv->valuestring, expected_config(kv->string));
                n++;
            }
            CHECK_EQ_INT(n, n_hostile() + 1 + 4);
        }
        cJSON_Delete(docs);
    }
    CHECK_EQ_INT(n_cm, 3);
    free(out);
}

static void test_render_sample_builds(void)
{
    if (!have_cmd("kubectl")) {
        fprintf(stderr, "# kubectl not installed: skipped\n");
        return;
    }
    struct render_cluster c = sample("store-0042");
    struct render_tree *t = NULL;
    struct re_buf err;
    re_buf_init(&err, 4096);
    int rc = render_cluster(&t, &c, &err);
    if (rc)
        fprintf(stderr, "render: %s\n", err.ptr);
    CHECK_EQ_INT(rc, 0);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/store-0042", test_tmpdir());
    CHECK_EQ_INT(render_tree_write_dir(t, dir), 0);

    int st;
    char *out = kustomize(dir, &st);
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    CHECK_EQ_INT(st, 0);
    size_t n_cm = 0;
    check_configmaps_libyaml(out, &n_cm);
    CHECK_EQ_INT(n_cm, 2);
    /* The hostile value never became a Secret or an extra document. */
    CHECK(!strstr(out, "\nkind: Secret"));
    CHECK(strstr(out, "kind: NetworkPolicy"));
    CHECK(strstr(out, "kind: RoleBinding"));
    CHECK(strstr(out, "kind: ResourceQuota"));
    CHECK(strstr(out, "kind: ClusterPolicy"));
    CHECK(strstr(out, "name: resedge-app-pos-api"));
    CHECK(strstr(out, "name: resedge-app-menu-board"));
    CHECK(!strstr(out, "commonLabels"));
    free(out);
    check_configmaps_pyyaml(dir);

    /* Every directory a Flux Kustomization points at builds on its own. */
    const char *sub[] = { "apps/pos-api", "apps/menu-board", "namespaces/pos",
                          "namespaces/loyalty", "policies", "flux", NULL };
    for (size_t i = 0; sub[i]; i++) {
        char d2[600];
        snprintf(d2, sizeof(d2), "%s/%s", dir, sub[i]);
        out = kustomize(d2, &st);
        if (st != 0)
            fprintf(stderr, "%s: %s\n", sub[i], out);
        CHECK_EQ_INT(st, 0);
        if (strncmp(sub[i], "apps/", 5) == 0) {
            CHECK(strstr(out, "resedge.io/app: "));
            CHECK(strstr(out, "resedge.io/version: "));
            CHECK(strstr(out, "resedge.io/cluster: store-0042"));
        }
        if (strcmp(sub[i], "apps/menu-board") == 0) {
            CHECK(strstr(out, "image: registry.example.com/menu-board:1.4.2"));
            CHECK(strstr(out, "namespace: loyalty"));
            CHECK(strstr(out, "resedge.io/version: 1.4.2"));
            /* includeSelectors: false keeps selectors untouched. */
            CHECK(strstr(out, "matchLabels:\n      app: menu-board\n  template"));
        }
        if (strcmp(sub[i], "apps/pos-api") == 0) {
            CHECK(strstr(out, "kind: GitRepository"));
            CHECK(strstr(out, "tag: v2.1.0"));
            CHECK(strstr(out, "path: ./deploy/edge"));
            CHECK(strstr(out, "prune: true"));
            CHECK(strstr(out, "targetNamespace: pos"));
        }
        free(out);
    }
    render_tree_free(t);
    re_buf_release(&err);
}

static void test_render_deterministic(void)
{
    struct render_cluster c = sample("store-0001");
    struct render_tree *a = NULL, *b = NULL, *o = NULL;
    CHECK_EQ_INT(render_cluster(&a, &c, NULL), 0);
    CHECK_EQ_INT(render_cluster(&b, &c, NULL), 0);
    CHECK(render_tree_equal(a, b));
    /* Input order does not matter. */
    struct render_namespace ns2[2] = { g_ns[1], g_ns[0] };
    struct render_app apps2[2] = { g_apps[1], g_apps[0] };
    struct render_kv meta2[64];
    for (size_t i = 0; i < c.n_metadata; i++)
        meta2[i] = g_meta[c.n_metadata - 1 - i];
    struct render_cluster c2 = c;
    c2.namespaces = ns2;
    c2.apps = apps2;
    c2.metadata = meta2;
    render_tree_free(b);
    CHECK_EQ_INT(render_cluster(&b, &c2, NULL), 0);
    CHECK(render_tree_equal(a, b));
    /* Another cluster shares every file that does not name it. */
    struct render_cluster c3 = c;
    c3.name = "store-0002";
    CHECK_EQ_INT(render_cluster(&o, &c3, NULL), 0);
    CHECK_EQ_INT(o->n, a->n);
    size_t same = 0;
    for (size_t i = 0; i < a->n; i++) {
        CHECK_EQ_STR(a->v[i].path, o->v[i].path);
        if (a->v[i].len == o->v[i].len && memcmp(a->v[i].data, o->v[i].data, a->v[i].len) == 0)
            same++;
    }
    CHECK(same >= a->n / 2);
    const struct render_entry *e1 = render_tree_get(a, "namespaces/pos/networkpolicy.yaml");
    const struct render_entry *e2 = render_tree_get(o, "namespaces/pos/networkpolicy.yaml");
    CHECK(e1 && e2 && e1->len == e2->len && memcmp(e1->data, e2->data, e1->len) == 0);
    CHECK(render_tree_get(a, "apps/menu-board/base/kustomization.yaml"));
    /* the hub's source is the agent's to write: one owner per object */
    CHECK(!render_tree_get(a, "flux/source.yaml"));
    CHECK(render_tree_get(a, "flux/kustomization.yaml"));
    CHECK(!render_tree_get(a, "nope.yaml"));
    render_tree_free(a);
    render_tree_free(b);
    render_tree_free(o);
}


/* The memo of emitted files never serves stale content: clusters whose
 * inputs differ in one value (a metadata value, each hostile string in
 * turn, a version, a namespace quota) get exactly the files the emitter
 * writes with the memo off, and different files where an input differs. */
static void test_render_cache_not_stale(void)
{
    struct render_cluster c = sample("store-0007");
    size_t n = n_hostile();
    struct render_tree *fresh[64] = { 0 }, *cached[64] = { 0 };
    struct render_namespace ns2[2] = { g_ns[0], g_ns[1] };
    struct render_app apps2[2] = { g_apps[0], g_apps[1] };
    CHECK(n + 3 <= 64);
    for (int pass = 0; pass < 2; pass++) {
        render_cache_set_enabled(pass == 1);
        struct render_tree **out = pass ? cached : fresh;
        for (size_t i = 0; i < n + 3; i++) {
            struct render_cluster ci = c;
            ns2[0] = g_ns[0];
            apps2[0] = g_apps[0];
            ci.namespaces = ns2;
            ci.apps = apps2;
            if (i < n) {
                /* The metadata value "region" takes each hostile string. */
                g_meta[n].value = hostile[i];
            } else if (i == n) {
                g_meta[n].value = "central";
                apps2[0].version = "v9";
            } else if (i == n + 1) {
                ns2[0].quota_cpu = "5";
            } else {
                ci.name = "store-0008";
            }
            CHECK_EQ_INT(render_cluster(&out[i], &ci, NULL), 0);
            g_meta[n].value = "central";
        }
    }
    uint64_t hits = 0, misses = 0;
    render_cache_stats(&hits, &misses);
    CHECK(hits > 0);
    for (size_t i = 0; i < n + 3; i++) {
        CHECK(render_tree_equal(fresh[i], cached[i]));
        for (size_t j = 0; j < i; j++)
            CHECK(!render_tree_equal(cached[i], cached[j]));
    }
    /* The hostile value is in the ConfigMap exactly as the emitter writes it. */
    const struct render_entry *a = render_tree_get(cached[0], "namespaces/pos/configmap.yaml");
    const struct render_entry *b = render_tree_get(cached[1], "namespaces/pos/configmap.yaml");
    CHECK(a && b && (a->len != b->len || memcmp(a->data, b->data, a->len) != 0));
    for (size_t i = 0; i < n + 3; i++) {
        render_tree_free(fresh[i]);
        render_tree_free(cached[i]);
    }
}

static void test_render_rejects(void)
{
    struct re_buf err;
    re_buf_init(&err, 4096);
    struct render_tree *t = NULL;
    struct render_cluster c = sample("store-0003");

    struct render_cluster bad = c;
    bad.name = "Store_3";
    CHECK_EQ_INT(render_cluster(&t, &bad, &err), -RE_EINVAL);
    CHECK(strstr(err.ptr, "Store_3"));

    struct render_app a = g_apps[0];
    a.git_url = "git://git.example.com/x.git";
    bad = c;
    bad.apps = &a;
    bad.n_apps = 1;
    CHECK_EQ_INT(render_cluster(&t, &bad, &err), -RE_EINVAL);
    CHECK(strstr(err.ptr, "git://"));

    struct render_app b = g_apps[1];
    struct render_file f[1] = { { "../escape.yaml", "x", 1 } };
    b.base_files = f;
    b.n_base_files = 1;
    bad = c;
    bad.apps = &b;
    bad.n_apps = 1;
    CHECK_EQ_INT(render_cluster(&t, &bad, &err), -RE_EINVAL);

    struct render_policy p = { "evil", "a: b\n---\n- x" };
    bad = c;
    bad.policies = &p;
    CHECK(render_cluster(&t, &bad, &err) < 0);
    CHECK(strstr(err.ptr, "evil"));

    struct render_kv kv = { "bad key", "v" };
    bad = c;
    bad.config = &kv;
    bad.n_config = 1;
    CHECK_EQ_INT(render_cluster(&t, &bad, &err), -RE_EINVAL);
    CHECK(strstr(err.ptr, "bad key"));

    struct render_kv bin = { "k", "\xc3\x28" };
    bad = c;
    bad.config = &bin;
    bad.n_config = 1;
    CHECK_EQ_INT(render_cluster(&t, &bad, &err), -RE_EINVAL);

    struct render_namespace dup[2] = { g_ns[0], g_ns[0] };
    bad = c;
    bad.namespaces = dup;
    CHECK_EQ_INT(render_cluster(&t, &bad, &err), -RE_EINVAL);
    CHECK(t == NULL);

    /* render_tree path checks. */
    CHECK_EQ_INT(render_tree_new(&t), 0);
    CHECK_EQ_INT(render_tree_add(t, "/abs", "", 0), -RE_EINVAL);
    CHECK_EQ_INT(render_tree_add(t, "a//b", "", 0), -RE_EINVAL);
    CHECK_EQ_INT(render_tree_add(t, "a/.git/config", "", 0), -RE_EINVAL);
    CHECK_EQ_INT(render_tree_add(t, "a", "", 0), 0);
    CHECK_EQ_INT(render_tree_add(t, "a-b", "", 0), 0);
    CHECK_EQ_INT(render_tree_add(t, "a/c", "", 0), 0);
    CHECK_EQ_INT(render_tree_finish(t), -RE_EEXIST);
    render_tree_free(t);
    re_buf_release(&err);
}

static void test_render_minimal_cluster(void)
{
    if (!have_cmd("kubectl"))
        return;
    struct render_cluster c = { .name = "empty" };
    struct render_tree *t = NULL;
    CHECK_EQ_INT(render_cluster(&t, &c, NULL), 0);
    CHECK_EQ_INT(t->n, 1);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/empty", test_tmpdir());
    CHECK_EQ_INT(render_tree_write_dir(t, dir), 0);
    int st;
    char *out = kustomize(dir, &st);
    CHECK_EQ_INT(st, 0);
    free(out);
    render_tree_free(t);
}

/* A namespace's network settings render as stored. */
static void test_render_network_settings(void)
{
    struct render_namespace ns[3] = {
        { "deny", NULL, 0, NULL, NULL, NULL, false, false, false, NULL, 0 },
        { "open", NULL, 0, NULL, NULL, NULL, true, false, true, NULL, 0 },
        { "nodns", NULL, 0, NULL, NULL, NULL, false, true, false, NULL, 0 },
    };
    struct render_cluster c = { .name = "net", .namespaces = ns, .n_namespaces = 3 };
    struct render_tree *t = NULL;
    const struct render_entry *e;
    CHECK_EQ_INT(render_cluster(&t, &c, NULL), 0);
    CHECK((e = render_tree_get(t, "namespaces/deny/networkpolicy.yaml")) &&
          memmem(e->data, e->len, "port: 53", 8));
    CHECK(!render_tree_get(t, "namespaces/deny/networkpolicy-same-namespace.yaml"));
    CHECK(!render_tree_get(t, "namespaces/open/networkpolicy.yaml"));       /* default_deny: false */
    CHECK((e = render_tree_get(t, "namespaces/open/networkpolicy-same-namespace.yaml")) &&
          memmem(e->data, e->len, "podSelector", 11));
    CHECK((e = render_tree_get(t, "namespaces/nodns/networkpolicy.yaml")) &&
          !memmem(e->data, e->len, "port: 53", 8));                         /* allow_dns: false */
    CHECK((e = render_tree_get(t, "namespaces/open/kustomization.yaml")) &&
          memmem(e->data, e->len, "networkpolicy-same-namespace.yaml", 33) &&
          !memmem(e->data, e->len, "- networkpolicy.yaml", 20));
    render_tree_free(t);
}

TEST_MAIN(T(test_yamlout_hostile_roundtrip), T(test_yamlout_types_and_docs),
          T(test_yamlout_reemit), T(test_render_sample_builds), T(test_render_deterministic),
          T(test_render_cache_not_stale),
          T(test_render_rejects), T(test_render_minimal_cluster), T(test_render_network_settings))
