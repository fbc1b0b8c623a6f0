/* api_plan.c - GET /api/v1/clusters/{name}/assignments: what the plan
 * (inventory/plan.h) gives one cluster; an agent may read only its own. */
#include <stdlib.h>
#include "error.h"
#include "http/routes.h"
#include "inventory/auth.h"
#include "inventory/fleet.h"
#include "inventory/plan.h"
#include "json.h"
#include "request.h"

static int assignments(struct http_exchange *x)
{
    struct api_req req;
    struct inv_req *q = &req.q;
    struct plan *p = NULL;
    cJSON *out = NULL;
    char *ref = NULL;
    int64_t id;
    int r;
    api_req_init(&req, x);
    if (api_require_role(&req, ROLE_READERS | ROLE_APPTEAM | ROLE_AGENT) < 0 ||
        api_param(&req, 0, &ref) < 0 || inv_lookup(q, &inv_cluster, ref, &id) < 0)
        goto fail;
    if ((r = plan_build(&p, q->db)) < 0) {
        inv_fail_err(q, r);
        goto fail;
    }
    size_t idx = fleet_index_of_id(p->fleet, id);
    if (inv_require_own_cluster(q, fleet_cluster_name(p->fleet, idx)) < 0)
        goto fail;
    if ((r = plan_cluster_json(&out, p, idx)) < 0) {
        inv_fail_err(q, r);
        goto fail;
    }
    http_response_json(&x->res, 200, out);
    goto out;
fail:
    api_reply_error(&req);
out:
    cJSON_Delete(out);
    plan_free(p);
    free(ref);
    return 0;
}

const struct route plan_routes[] = {
    { "GET", "/api/v1/clusters/{name}/assignments", assignments,
      ROLE_READERS | ROLE_APPTEAM | ROLE_AGENT },
    { NULL, NULL, NULL, 0 },
};
