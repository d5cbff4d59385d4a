/*
 * xsasl_cyrus.c - the xsasl.h interface over Cyrus SASL (libsasl2): the only
 * file that calls the library. Cyrus finds its mechanisms as plugins and its
 * server settings (pwcheck_method, auxprop_plugin, mech_list...) in
 * APP_NAME.conf on the configuration path.
 *
 * Must never: log a password or a decoded client response, reuse a server
 * handle after a failed exchange (the caller creates a new one), offer a SASL
 * security layer (max_ssf 0: SMTP runs no SASL integrity or privacy layer),
 * or tell a client that a user does not exist (SASL_NOUSER reads as
 * SASL_BADAUTH).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "msg.h"
#include "mymalloc.h"
#include "xsasl.h"

/* --- shared ------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned flag;
} xsasl_security_names[] = {
    {"noplaintext", SASL_SEC_NOPLAINTEXT},
    {"noactive", SASL_SEC_NOACTIVE},
    {"nodictionary", SASL_SEC_NODICTIONARY},
    {"noanonymous", SASL_SEC_NOANONYMOUS},
    {"forward_secrecy", SASL_SEC_FORWARD_SECRECY},
    {"mutual_auth", SASL_SEC_MUTUAL_AUTH},
};

int xsasl_security_parse(const char *opts, unsigned *flags, struct strbuf *err)
{
    char *copy = xstrdup(opts ? opts : ""), *word, *save = NULL;
    size_t i;
    int ret = 0;

    *flags = 0;
    for (word = strtok_r(copy, ", \t\r\n", &save); word; word = strtok_r(NULL, ", \t\r\n", &save)) {
        for (i = 0; i < sizeof(xsasl_security_names) / sizeof(xsasl_security_names[0]); i++)
            if (strcasecmp(word, xsasl_security_names[i].name) == 0)
                break;
        if (i == sizeof(xsasl_security_names) / sizeof(xsasl_security_names[0])) {
            strbuf_printf(err, "unknown SASL security option \"%.100s\"", word);
            ret = -1;
            break;
        }
        *flags |= xsasl_security_names[i].flag;
    }
    free(copy);
    return ret;
}

static int xsasl_log(void *context, int level, const char *message)
{
    (void) context;
    switch (level) {
    case SASL_LOG_ERR:
    case SASL_LOG_WARN:
        msg_warn("SASL authentication problem: %s", message);
        break;
    case SASL_LOG_FAIL:
        msg_warn("SASL authentication failure: %s", message);
        break;
    case SASL_LOG_NOTE:
        if (msg_verbose)
            msg_info("SASL authentication info: %s", message);
        break;
    case SASL_LOG_DEBUG:
    case SASL_LOG_TRACE:
        if (msg_verbose > 1)
            msg_info("SASL authentication %s: %s", level == SASL_LOG_DEBUG ? "debug" : "trace",
                     message);
        break;
    default:
        /* SASL_LOG_PASS carries passwords: never logged. */
        break;
    }
    return SASL_OK;
}

static const char *xsasl_strerror(int status)
{
    return sasl_errstring(status, NULL, NULL);
}

/* Points the library at the configuration directories (a process-wide setting). */
static int xsasl_set_config_path(const char *config_path, struct strbuf *err)
{
    static char *kept;

    if (config_path == NULL || *config_path == '\0')
        return 0;
    xfree(&kept);
    kept = xstrdup(config_path);
    if (sasl_set_path(SASL_PATH_TYPE_CONFIG, kept) != SASL_OK) {
        strbuf_printf(err, "failed to set Cyrus SASL configuration path: \"%s\"", kept);
        return -1;
    }
    return 0;
}

static int xsasl_set_security(sasl_conn_t *conn, const char *security, struct strbuf *err)
{
    sasl_security_properties_t props;
    unsigned flags;
    int status;

    if (xsasl_security_parse(security, &flags, err) < 0)
        return -1;
    memset(&props, 0, sizeof(props));
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = 0;
    props.security_flags = flags;
    if ((status = sasl_setprop(conn, SASL_SEC_PROPS, &props)) != SASL_OK) {
        strbuf_printf(err, "SASL per-connection security setup: %s", xsasl_strerror(status));
        return -1;
    }
    return 0;
}

/* Decodes base64 text ("=" is an empty string, RFC 4954 section 4) into out. */
static int xsasl_decode(const char *text, struct strbuf *out)
{
    size_t len = strlen(text);
    unsigned outlen = 0;

    strbuf_reset(out);
    if (len > XSASL_TEXT_MAX || strbuf_reserve(out, len + 1) < 0)
        return -1;
    if (strcmp(text, "=") == 0)
        return 0;
    if (len > 0 && sasl_decode64(text, (unsigned) len, out->data, (unsigned) (len + 1),
                                 &outlen) != SASL_OK)
        return -1;
    out->len = outlen;
    out->data[outlen] = '\0';
    return 0;
}

static int xsasl_encode(const char *data, unsigned len, struct strbuf *out)
{
    unsigned need = (len + 2) / 3 * 4 + 1, outlen = 0;

    strbuf_reset(out);
    if (need > XSASL_TEXT_MAX || strbuf_reserve(out, need) < 0)
        return -1;
    if (len > 0 && sasl_encode64(data, len, out->data, need, &outlen) != SASL_OK)
        return -1;
    out->len = outlen;
    out->data[outlen] = '\0';
    return 0;
}

/* "addr;port" as Cyrus wants it, or NULL. */
static char *xsasl_ipport(const char *addr, int port)
{
    struct strbuf b;

    if (addr == NULL || *addr == '\0' || port <= 0)
        return NULL;
    strbuf_init(&b, 64, 256);
    if (strbuf_printf(&b, "%s;%d", addr, port) < 0) {
        strbuf_release(&b);
        return NULL;
    }
    return strbuf_steal(&b);
}

/* --- server ------------------------------------------------------------------- */

struct xsasl_server {
    sasl_conn_t *conn;
    char *mechanisms;
    char *username;
    struct strbuf decoded;
};

static sasl_callback_t xsasl_server_callbacks[] = {
    {SASL_CB_LOG, (int (*)(void)) (void (*)(void)) xsasl_log, NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

int xsasl_server_init(const char *app_name, const char *config_path, struct strbuf *err)
{
    int status;

    if (xsasl_set_config_path(config_path, err) < 0)
        return -1;
    if ((status = sasl_server_init(xsasl_server_callbacks, app_name)) != SASL_OK) {
        strbuf_printf(err, "SASL per-process initialization failed: %s", xsasl_strerror(status));
        return -1;
    }
    if (msg_verbose)
        msg_info("SASL config file is %s.conf", app_name);
    return 0;
}

struct xsasl_server *xsasl_server_create(const struct xsasl_server_args *a, struct strbuf *err)
{
    struct xsasl_server *srv;
    char *local = xsasl_ipport(a->local_addr, a->local_port);
    char *remote = xsasl_ipport(a->remote_addr, a->remote_port);
    const char *list = NULL;
    sasl_conn_t *conn = NULL;
    int status, count = 0;

    status = sasl_server_new(a->service, a->server_name,
                             a->realm && *a->realm ? a->realm : NULL, local, remote, NULL, 0,
                             &conn);
    free(local);
    free(remote);
    if (status != SASL_OK) {
        strbuf_printf(err, "SASL per-connection server initialization: %s",
                      xsasl_strerror(status));
        return NULL;
    }
    if (xsasl_set_security(conn, a->security, err) < 0) {
        sasl_dispose(&conn);
        return NULL;
    }
    srv = xcalloc(1, sizeof(*srv));
    srv->conn = conn;
    strbuf_init(&srv->decoded, 256, XSASL_TEXT_MAX + 1);
    status = sasl_listmech(conn, NULL, "", " ", "", &list, NULL, &count);
    if (status != SASL_OK) {
        msg_warn("cannot list the SASL mechanisms: %s", xsasl_strerror(status));
        list = "";
    } else if (count <= 0) {
        msg_warn("no applicable SASL mechanisms");
        list = "";
    }
    srv->mechanisms = xstrdup(list ? list : "");
    return srv;
}

const char *xsasl_server_mechanisms(struct xsasl_server *srv)
{
    return srv->mechanisms;
}

int xsasl_server_offers(struct xsasl_server *srv, const char *mech)
{
    const char *p = srv->mechanisms;
    size_t n = strlen(mech);

    while (*p) {
        size_t w = strcspn(p, " ");

        if (w == n && n > 0 && strncasecmp(p, mech, n) == 0)
            return 1;
        p += w;
        p += strspn(p, " ");
    }
    return 0;
}

static enum xsasl_status xsasl_server_result(int status, const char *out, unsigned outlen,
                                             struct strbuf *reply)
{
    strbuf_reset(reply);
    if (status == SASL_OK)
        return XSASL_DONE;
    if (status == SASL_CONTINUE) {
        if (xsasl_encode(out, outlen, reply) < 0) {
            strbuf_set(reply, "challenge too long");
            return XSASL_FAIL;
        }
        return XSASL_MORE;
    }
    if (status == SASL_NOUSER)          /* no hint that the name is unknown */
        status = SASL_BADAUTH;
    strbuf_set(reply, xsasl_strerror(status));
    switch (status) {
    case SASL_FAIL:
    case SASL_NOMEM:
    case SASL_TRYAGAIN:
    case SASL_UNAVAIL:
        return XSASL_TEMP;
    default:
        return XSASL_FAIL;
    }
}

enum xsasl_status xsasl_server_first(struct xsasl_server *srv, const char *mech,
                                     const char *init, struct strbuf *reply)
{
    const char *out = NULL;
    unsigned outlen = 0;
    int status;

    if (init && xsasl_decode(init, &srv->decoded) < 0) {
        strbuf_set(reply, xsasl_strerror(SASL_BADPROT));
        return XSASL_FORM;
    }
    status = sasl_server_start(srv->conn, mech, init ? srv->decoded.data : NULL,
                               init ? (unsigned) srv->decoded.len : 0, &out, &outlen);
    return xsasl_server_result(status, out, outlen, reply);
}

enum xsasl_status xsasl_server_next(struct xsasl_server *srv, const char *response,
                                    struct strbuf *reply)
{
    const char *out = NULL;
    unsigned outlen = 0;
    int status;

    if (xsasl_decode(response, &srv->decoded) < 0) {
        strbuf_set(reply, xsasl_strerror(SASL_BADPROT));
        return XSASL_FORM;
    }
    status = sasl_server_step(srv->conn, srv->decoded.data, (unsigned) srv->decoded.len, &out,
                              &outlen);
    return xsasl_server_result(status, out, outlen, reply);
}

const char *xsasl_server_username(struct xsasl_server *srv)
{
    const void *name = NULL;
    char *p;

    xfree(&srv->username);
    if (sasl_getprop(srv->conn, SASL_USERNAME, &name) != SASL_OK || name == NULL)
        return NULL;
    srv->username = xstrdup(name);
    /* The name reaches logs and headers: nothing unprintable. */
    for (p = srv->username; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    return srv->username;
}

void xsasl_server_free(struct xsasl_server **srvp)
{
    struct xsasl_server *srv = *srvp;

    if (srv == NULL)
        return;
    sasl_dispose(&srv->conn);
    free(srv->mechanisms);
    free(srv->username);
    strbuf_release(&srv->decoded);
    free(srv);
    *srvp = NULL;
}

/* --- client ------------------------------------------------------------------- */

struct xsasl_client {
    sasl_conn_t *conn;
    char *username;
    sasl_secret_t *secret;
    sasl_callback_t callbacks[4];
    struct strbuf decoded;
};

static sasl_callback_t xsasl_client_callbacks[] = {
    {SASL_CB_LOG, (int (*)(void)) (void (*)(void)) xsasl_log, NULL},
    {SASL_CB_LIST_END, NULL, NULL},
};

static int xsasl_client_get_user(void *context, int id, const char **result, unsigned *len)
{
    struct xsasl_client *cl = context;

    if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
        return SASL_BADPARAM;
    *result = cl->username;
    if (len)
        *len = (unsigned) strlen(cl->username);
    return SASL_OK;
}

static int xsasl_client_get_secret(sasl_conn_t *conn, void *context, int id,
                                   sasl_secret_t **psecret)
{
    struct xsasl_client *cl = context;

    if (conn == NULL || psecret == NULL || id != SASL_CB_PASS)
        return SASL_BADPARAM;
    *psecret = cl->secret;
    return SASL_OK;
}

int xsasl_client_init(const char *config_path, struct strbuf *err)
{
    int status;

    if (xsasl_set_config_path(config_path, err) < 0)
        return -1;
    if ((status = sasl_client_init(xsasl_client_callbacks)) != SASL_OK) {
        strbuf_printf(err, "SASL library initialization error: %s", xsasl_strerror(status));
        return -1;
    }
    return 0;
}

struct xsasl_client *xsasl_client_create(const char *service, const char *server_name,
                                         const char *security, const char *username,
                                         const char *password, struct strbuf *err)
{
    struct xsasl_client *cl = xcalloc(1, sizeof(*cl));
    size_t plen = strlen(password);
    int status;

    cl->username = xstrdup(username);
    cl->secret = xmalloc(sizeof(sasl_secret_t) + plen + 1);
    cl->secret->len = (unsigned long) plen;
    memcpy(cl->secret->data, password, plen + 1);
    cl->callbacks[0] = (sasl_callback_t) {
        SASL_CB_USER, (int (*)(void)) (void (*)(void)) xsasl_client_get_user, cl};
    cl->callbacks[1] = (sasl_callback_t) {
        SASL_CB_AUTHNAME, (int (*)(void)) (void (*)(void)) xsasl_client_get_user, cl};
    cl->callbacks[2] = (sasl_callback_t) {
        SASL_CB_PASS, (int (*)(void)) (void (*)(void)) xsasl_client_get_secret, cl};
    cl->callbacks[3] = (sasl_callback_t) {SASL_CB_LIST_END, NULL, NULL};
    strbuf_init(&cl->decoded, 256, XSASL_TEXT_MAX + 1);
    status = sasl_client_new(service, server_name, NULL, NULL, cl->callbacks, 0, &cl->conn);
    if (status != SASL_OK) {
        strbuf_printf(err, "per-session SASL client initialization: %s", xsasl_strerror(status));
        xsasl_client_free(&cl);
        return NULL;
    }
    if (xsasl_set_security(cl->conn, security, err) < 0) {
        xsasl_client_free(&cl);
        return NULL;
    }
    return cl;
}

enum xsasl_status xsasl_client_first(struct xsasl_client *cl, const char *mechanisms,
                                     const char **mech, struct strbuf *reply)
{
    const char *out = NULL;
    unsigned outlen = 0;
    int status;

    *mech = NULL;
    status = sasl_client_start(cl->conn, mechanisms, NULL, &out, &outlen, mech);
    if (status != SASL_OK && status != SASL_CONTINUE) {
        strbuf_set(reply, xsasl_strerror(status));
        return XSASL_FAIL;
    }
    if (xsasl_encode(out, out ? outlen : 0, reply) < 0) {
        strbuf_set(reply, "initial response too long");
        return XSASL_FAIL;
    }
    return XSASL_DONE;
}

enum xsasl_status xsasl_client_next(struct xsasl_client *cl, const char *challenge,
                                    struct strbuf *reply)
{
    const char *out = NULL;
    unsigned outlen = 0;
    int status;

    if (xsasl_decode(challenge, &cl->decoded) < 0) {
        strbuf_set(reply, xsasl_strerror(SASL_BADPROT));
        return XSASL_FORM;
    }
    status = sasl_client_step(cl->conn, cl->decoded.data, (unsigned) cl->decoded.len, NULL,
                              &out, &outlen);
    if (status != SASL_OK && status != SASL_CONTINUE) {
        strbuf_set(reply, xsasl_strerror(status));
        return XSASL_FAIL;
    }
    if (xsasl_encode(out, out ? outlen : 0, reply) < 0) {
        strbuf_set(reply, "response too long");
        return XSASL_FAIL;
    }
    return XSASL_DONE;
}

void xsasl_client_free(struct xsasl_client **clp)
{
    struct xsasl_client *cl = *clp;

    if (cl == NULL)
        return;
    if (cl->conn)
        sasl_dispose(&cl->conn);
    free(cl->username);
    if (cl->secret) {
        memset(cl->secret->data, 0, cl->secret->len);
        free(cl->secret);
    }
    strbuf_release(&cl->decoded);
    free(cl);
    *clp = NULL;
}
