/*
 * unknown.c - a local recipient with no alias and no passwd entry
 * (Postfix's local/unknown.c): fallback_transport_maps / fallback_transport
 * take it, else luser_relay (after $name expansion) receives it, else it
 * bounces with 5.1.1 unknown user: "name".
 * Never relays to the recipient itself (a luser_relay that expands back to
 * the same address bounces instead of looping).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dict.h"
#include "local.h"
#include "msg.h"
#include "params.h"
#include "resolve.h"
#include "strbuf.h"

void unknown_deliver(struct local_state st, const struct local_user *as)
{
    static struct dict_list *fallback_maps;
    struct strbuf relay, canon, err;
    const char *v = NULL;

    if (*var_fallback_transport_maps) {
        if (fallback_maps == NULL) {
            strbuf_init(&err, 128, STRBUF_UNLIMITED);
            if ((fallback_maps = dict_list_open(var_fallback_transport_maps, DICT_FLAG_FOLD_KEY,
                                                &err)) == NULL)
                msg_fatal("fallback_transport_maps: %s", err.data);
            strbuf_release(&err);
        }
        if ((v = dict_list_get(fallback_maps, st.user)) == NULL
            && dict_list_error(fallback_maps) != DICT_ERR_NONE) {
            local_result(&st, DELIVER_DEFER, "4.3.0", "fallback_transport_maps lookup failure");
            return;
        }
    }
    if (v == NULL && *var_fallback_transport)
        v = var_fallback_transport;
    if (v) {
        if (LOCAL_VERIFY(&st))
            local_result(&st, DELIVER_SENT, "2.0.0", "delivers via %s", v);
        else
            local_pass(st, v);
        return;
    }
    if (*var_luser_relay) {
        strbuf_init(&relay, 128, 4096);
        strbuf_init(&canon, 128, STRBUF_UNLIMITED);
        if (expand_local(var_luser_relay, &st, as, NULL, &relay) < 0 || relay.len == 0) {
            msg_warn("%s: luser_relay: cannot expand \"%s\"", st.rq->req->queue_id,
                     var_luser_relay);
            local_result(&st, DELIVER_DEFER, "4.3.5", "mail system configuration error");
        } else {
            resolve_rewrite(relay.data, &canon);
            if (strcasecmp(canon.data, st.address) == 0) {
                local_result(&st, DELIVER_BOUNCE, "5.1.1", "unknown user: \"%s\"", st.user);
            } else {
                st.unmatched = NULL;
                (void) token_deliver_string(st, as, relay.data);
            }
        }
        strbuf_release(&relay);
        strbuf_release(&canon);
        return;
    }
    local_result(&st, DELIVER_BOUNCE, "5.1.1", "unknown user: \"%s\"", st.user);
}
