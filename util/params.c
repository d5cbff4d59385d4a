/*
 * params.c - THE parameter registry: every main.cf parameter with its type,
 * Postfix's default text, limits, var_ variable and one line of documentation,
 * plus the defaults that can only be computed at run time (host names, the
 * installation directories, mynetworks).
 * Nothing here reads main.cf or exits; config.c interprets the table.
 * To add a parameter: add its var_ line, its table row (sorted by name), its
 * extern in params.h and its entry in man/main.cf.5 (a test checks the page).
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "build_config.h"
#include "config.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* BEGIN variables (one per parameter, same order as the table) */
char *var_2bounce_notice_recipient;
long long var_access_map_defer_code;
long long var_access_map_reject_code;
char *var_alias_database;
char *var_alias_maps;
char *var_allow_mail_to_commands;
char *var_allow_mail_to_files;
int var_allow_min_user;
int var_allow_percent_hack;
int var_allow_untrusted_routing;
int var_always_add_missing_headers;
char *var_always_bcc;
long long var_anvil_rate_time_unit;
long long var_anvil_status_update_time;
int var_append_at_myorigin;
int var_append_dot_mydomain;
char *var_authorized_flush_users;
char *var_authorized_mailq_users;
char *var_authorized_submit_users;
int var_biff;
char *var_body_checks;
long long var_body_checks_size_limit;
char *var_bounce_notice_recipient;
long long var_bounce_queue_lifetime;
char *var_bounce_service_name;
long long var_bounce_size_limit;
char *var_bounce_template_file;
char *var_canonical_classes;
char *var_canonical_maps;
char *var_cleanup_service_name;
char *var_command_directory;
char *var_command_expansion_filter;
int var_broken_sasl_auth_clients;
long long var_command_time_limit;
char *var_compatibility_level;
char *var_config_directory;
char *var_content_filter;
char *var_daemon_directory;
char *var_cyrus_sasl_config_path;
long long var_daemon_timeout;
char *var_data_directory;
long long var_debug_peer_level;
char *var_debug_peer_list;
char *var_default_database_type;
long long var_default_delivery_slot_cost;
long long var_default_destination_concurrency_failed_cohort_limit;
long long var_default_destination_concurrency_limit;
char *var_default_destination_concurrency_negative_feedback;
char *var_default_destination_concurrency_positive_feedback;
long long var_default_destination_rate_delay;
long long var_default_destination_recipient_limit;
long long var_default_extra_recipient_limit;
char *var_default_privs;
long long var_default_process_limit;
char *var_default_rbl_reply;
long long var_default_recipient_limit;
char *var_default_transport;
char *var_default_verp_delimiters;
long long var_defer_code;
char *var_defer_service_name;
char *var_defer_transports;
long long var_delay_logging_resolution_limit;
char *var_delay_notice_recipient;
long long var_delay_warning_time;
long long var_deliver_lock_attempts;
long long var_deliver_lock_delay;
int var_disable_dns_lookups;
int var_disable_mime_input_processing;
int var_disable_mime_output_conversion;
int var_disable_vrfy_command;
char *var_dns_servers;
char *var_double_bounce_sender;
long long var_duplicate_filter_limit;
char *var_empty_address_recipient;
int var_enable_original_recipient;
char *var_error_notice_recipient;
int var_expand_owner_alias;
char *var_export_environment;
char *var_fallback_transport;
char *var_fallback_transport_maps;
long long var_fork_attempts;
long long var_fork_delay;
char *var_forward_path;
long long var_hash_queue_depth;
char *var_hash_queue_names;
long long var_header_address_token_limit;
char *var_header_checks;
char *var_header_from_format;
long long var_header_size_limit;
char *var_home_mailbox;
long long var_hopcount_limit;
char *var_html_directory;
int var_ignore_mx_lookup_error;
char *var_import_environment;
long long var_in_flow_delay;
char *var_inet_interfaces;
char *var_inet_protocols;
long long var_initial_destination_concurrency;
char *var_internal_mail_filter_classes;
long long var_invalid_hostname_reject_code;
long long var_ipc_idle;
long long var_ipc_timeout;
long long var_ipc_ttl;
long long var_line_length_limit;
long long var_lmtp_connect_timeout;
long long var_lmtp_data_done_timeout;
long long var_lmtp_data_init_timeout;
long long var_lmtp_data_xfer_timeout;
char *var_lmtp_lhlo_name;
long long var_lmtp_lhlo_timeout;
long long var_lmtp_mail_timeout;
long long var_lmtp_quit_timeout;
long long var_lmtp_rcpt_timeout;
long long var_lmtp_rset_timeout;
int var_lmtp_sasl_auth_enable;
char *var_lmtp_sasl_password_maps;
char *var_lmtp_tcp_port;
char *var_lmtp_tls_security_level;
char *var_local_command_shell;
char *var_lmtp_sasl_mechanism_filter;
char *var_lmtp_sasl_security_options;
char *var_lmtp_sasl_tls_security_options;
int var_lmtp_sasl_auth_soft_bounce;
long long var_local_destination_concurrency_limit;
long long var_local_destination_recipient_limit;
char *var_local_header_rewrite_clients;
char *var_local_recipient_maps;
char *var_local_transport;
char *var_luser_relay;
char *var_mail_name;
char *var_mail_owner;
char *var_mail_spool_directory;
char *var_mail_version;
char *var_mailbox_command;
char *var_mailbox_command_maps;
char *var_mailbox_delivery_lock;
long long var_mailbox_size_limit;
char *var_mailbox_transport;
char *var_mailbox_transport_maps;
char *var_maillog_file;
char *var_maillog_format;
char *var_mailq_path;
char *var_manpage_directory;
long long var_maps_rbl_reject_code;
char *var_masquerade_classes;
char *var_masquerade_domains;
char *var_masquerade_exceptions;
long long var_max_idle;
long long var_max_use;
long long var_maximal_backoff_time;
long long var_maximal_queue_lifetime;
char *var_message_reject_characters;
long long var_message_size_limit;
char *var_message_strip_characters;
long long var_message_total_size_limit;
char *var_meta_directory;
long long var_milter_command_timeout;
char *var_milter_connect_macros;
int var_milter_connection_reuse;
long long var_milter_connect_timeout;
long long var_milter_content_timeout;
char *var_milter_data_macros;
char *var_milter_default_action;
char *var_milter_end_of_data_macros;
char *var_milter_end_of_header_macros;
char *var_milter_header_checks;
char *var_milter_helo_macros;
char *var_milter_macro_daemon_name;
char *var_milter_macro_defaults;
char *var_milter_macro_v;
char *var_milter_mail_macros;
char *var_milter_protocol;
char *var_milter_rcpt_macros;
char *var_milter_unknown_command_macros;
long long var_mime_boundary_length_limit;
char *var_mime_header_checks;
long long var_mime_nesting_limit;
long long var_minimal_backoff_time;
long long var_multi_recipient_bounce_reject_code;
char *var_mydestination;
char *var_mydomain;
char *var_myhostname;
char *var_mynetworks;
char *var_mynetworks_style;
char *var_myorigin;
char *var_nested_header_checks;
char *var_newaliases_path;
long long var_non_fqdn_reject_code;
char *var_non_smtpd_milters;
char *var_notify_classes;
int var_owner_request_special;
char *var_parent_domain_matches_subdomains;
char *var_permit_mx_backup_networks;
char *var_prepend_delivered_header;
char *var_process_id_directory;
char *var_propagate_unmatched_extensions;
char *var_proxy_interfaces;
long long var_qmgr_clog_warn_time;
long long var_qmgr_fudge_factor;
long long var_qmgr_message_active_limit;
long long var_qmgr_message_recipient_limit;
long long var_qmgr_message_recipient_minimum;
char *var_queue_directory;
long long var_queue_file_attribute_count_limit;
long long var_queue_minfree;
long long var_queue_run_delay;
char *var_queue_service_name;
char *var_rbl_reply_maps;
char *var_readme_directory;
char *var_receive_override_options;
char *var_recipient_bcc_maps;
char *var_recipient_canonical_classes;
char *var_recipient_canonical_maps;
char *var_recipient_delimiter;
long long var_reject_code;
char *var_relay_domains;
long long var_relay_domains_reject_code;
char *var_relay_recipient_maps;
char *var_relay_transport;
char *var_relayhost;
char *var_relocated_maps;
char *var_remote_header_rewrite_domain;
int var_require_home_directory;
int var_resolve_dequoted_address;
int var_resolve_null_domain;
int var_resolve_numeric_domain;
char *var_rewrite_service_name;
char *var_sample_directory;
char *var_sender_bcc_maps;
char *var_sender_canonical_classes;
char *var_sender_canonical_maps;
char *var_sender_dependent_default_transport_maps;
char *var_sender_dependent_relayhost_maps;
char *var_sendmail_path;
long long var_service_throttle_time;
char *var_setgid_group;
char *var_shlib_directory;
int var_show_user_unknown_table_name;
char *var_showq_service_name;
char *var_smtp_address_preference;
int var_smtp_always_send_ehlo;
char *var_smtp_bind_address;
char *var_smtp_bind_address6;
char *var_smtp_body_checks;
long long var_smtp_connect_timeout;
char *var_smtp_connection_cache_destinations;
int var_smtp_connection_cache_on_demand;
long long var_smtp_connection_cache_time_limit;
long long var_smtp_connection_reuse_time_limit;
long long var_smtp_data_done_timeout;
long long var_smtp_data_init_timeout;
long long var_smtp_data_xfer_timeout;
int var_smtp_defer_if_no_mx_address_found;
char *var_smtp_dns_support_level;
char *var_smtp_fallback_relay;
char *var_smtp_generic_maps;
char *var_smtp_header_checks;
char *var_smtp_helo_name;
long long var_smtp_helo_timeout;
char *var_smtp_host_lookup;
long long var_smtp_line_length_limit;
long long var_smtp_mail_timeout;
char *var_smtp_mime_header_checks;
long long var_smtp_mx_address_limit;
long long var_smtp_mx_session_limit;
long long var_smtp_quit_timeout;
long long var_smtp_rcpt_timeout;
long long var_smtp_rset_timeout;
int var_smtp_sasl_auth_enable;
char *var_smtp_sasl_mechanism_filter;
char *var_smtp_sasl_password_maps;
char *var_smtp_sasl_security_options;
char *var_smtp_sasl_tls_security_options;
char *var_smtp_sasl_type;
int var_smtp_sasl_auth_soft_bounce;
int var_smtp_send_xforward_command;
int var_smtp_skip_5xx_greeting;
long long var_smtp_starttls_timeout;
char *var_smtp_tcp_port;
char *var_smtp_tls_CAfile;
char *var_smtp_tls_CApath;
char *var_smtp_tls_cert_file;
char *var_smtp_tls_ciphers;
char *var_smtp_tls_exclude_ciphers;
char *var_smtp_tls_key_file;
long long var_smtp_tls_loglevel;
char *var_smtp_tls_mandatory_ciphers;
char *var_smtp_tls_mandatory_exclude_ciphers;
char *var_smtp_tls_mandatory_protocols;
int var_smtp_tls_note_starttls_offer;
char *var_smtp_tls_policy_maps;
char *var_smtp_tls_protocols;
char *var_smtp_tls_secure_cert_match;
char *var_smtp_tls_security_level;
char *var_smtp_tls_servername;
char *var_smtp_tls_session_cache_database;
long long var_smtp_tls_session_cache_timeout;
char *var_smtp_tls_verify_cert_match;
int var_smtp_tls_wrappermode;
char *var_smtpd_authorized_xclient_hosts;
char *var_smtpd_authorized_xforward_hosts;
char *var_smtpd_banner;
long long var_smtpd_client_auth_rate_limit;
long long var_smtpd_client_connection_count_limit;
long long var_smtpd_client_connection_rate_limit;
char *var_smtpd_client_event_limit_exceptions;
long long var_smtpd_client_message_rate_limit;
long long var_smtpd_client_new_tls_session_rate_limit;
int var_smtpd_client_port_logging;
long long var_smtpd_client_recipient_rate_limit;
char *var_smtpd_client_restrictions;
char *var_smtpd_command_filter;
char *var_smtpd_data_restrictions;
int var_smtpd_delay_open_until_valid_rcpt;
int var_smtpd_delay_reject;
char *var_smtpd_discard_ehlo_keyword_address_maps;
char *var_smtpd_discard_ehlo_keywords;
char *var_smtpd_end_of_data_restrictions;
long long var_smtpd_error_sleep_time;
char *var_smtpd_etrn_restrictions;
char *var_smtpd_expansion_filter;
char *var_smtpd_forbid_bare_newline;
char *var_smtpd_forbid_bare_newline_exclusions;
int var_smtpd_forbid_unauth_pipelining;
long long var_smtpd_hard_error_limit;
int var_smtpd_helo_required;
char *var_smtpd_helo_restrictions;
long long var_smtpd_history_flush_threshold;
long long var_smtpd_junk_command_limit;
long long var_smtpd_min_data_rate;
char *var_smtpd_log_access_permit_actions;
char *var_smtpd_milter_maps;
char *var_smtpd_milters;
char *var_smtpd_noop_commands;
char *var_smtpd_null_access_lookup_key;
int var_smtpd_peername_lookup;
int var_smtpd_per_record_deadline;
char *var_smtpd_policy_service_default_action;
long long var_smtpd_policy_service_max_idle;
long long var_smtpd_policy_service_max_ttl;
char *var_smtpd_policy_service_policy_context;
long long var_smtpd_policy_service_request_limit;
long long var_smtpd_policy_service_retry_delay;
long long var_smtpd_policy_service_timeout;
long long var_smtpd_policy_service_try_limit;
long long var_smtpd_recipient_limit;
long long var_smtpd_recipient_overshoot_limit;
char *var_smtpd_recipient_restrictions;
char *var_smtpd_reject_footer;
int var_smtpd_reject_unlisted_recipient;
int var_smtpd_reject_unlisted_sender;
char *var_smtpd_relay_restrictions;
char *var_smtpd_restriction_classes;
int var_smtpd_sasl_auth_enable;
int var_smtpd_sasl_authenticated_header;
char *var_smtpd_sasl_exceptions_networks;
char *var_smtpd_sasl_local_domain;
char *var_smtpd_sasl_path;
char *var_smtpd_sasl_security_options;
char *var_smtpd_sasl_service;
char *var_smtpd_sasl_tls_security_options;
char *var_smtpd_sasl_type;
char *var_smtpd_sender_login_maps;
char *var_smtpd_sender_restrictions;
long long var_smtpd_sasl_response_limit;
long long var_smtpd_soft_error_limit;
long long var_smtpd_starttls_timeout;
long long var_smtpd_timeout;
char *var_smtpd_tls_CAfile;
char *var_smtpd_tls_CApath;
int var_smtpd_tls_ask_ccert;
int var_smtpd_tls_auth_only;
long long var_smtpd_tls_ccert_verifydepth;
char *var_smtpd_tls_cert_file;
char *var_smtpd_tls_chain_files;
char *var_smtpd_tls_ciphers;
char *var_smtpd_tls_dh1024_param_file;
char *var_smtpd_tls_eecdh_grade;
char *var_smtpd_tls_exclude_ciphers;
char *var_smtpd_tls_key_file;
long long var_smtpd_tls_loglevel;
char *var_smtpd_tls_mandatory_ciphers;
char *var_smtpd_tls_mandatory_exclude_ciphers;
char *var_smtpd_tls_mandatory_protocols;
char *var_smtpd_tls_protocols;
int var_smtpd_tls_received_header;
int var_smtpd_tls_req_ccert;
char *var_smtpd_tls_security_level;
char *var_smtpd_tls_session_cache_database;
long long var_smtpd_tls_session_cache_timeout;
int var_smtpd_tls_wrappermode;
char *var_smtpd_untrusted_strip_headers;
char *var_smtpd_upstream_proxy_protocol;
int var_smtputf8_enable;
int var_soft_bounce;
long long var_stale_lock_time;
int var_strict_rfc821_envelopes;
int var_swap_bangpath;
char *var_syslog_facility;
char *var_syslog_name;
char *var_trace_service_name;
char *var_transport_maps;
long long var_transport_retry_time;
long long var_trigger_timeout;
char *var_undisclosed_recipients_header;
long long var_unknown_address_reject_code;
long long var_unknown_client_reject_code;
long long var_unknown_hostname_reject_code;
long long var_unknown_local_recipient_reject_code;
long long var_unknown_relay_recipient_reject_code;
long long var_unknown_virtual_alias_reject_code;
long long var_unknown_virtual_mailbox_reject_code;
long long var_virtual_alias_address_length_limit;
char *var_virtual_alias_domains;
long long var_virtual_alias_expansion_limit;
char *var_virtual_alias_maps;
long long var_virtual_alias_recursion_limit;
char *var_virtual_gid_maps;
char *var_virtual_mailbox_base;
char *var_virtual_mailbox_domains;
long long var_virtual_mailbox_limit;
char *var_virtual_mailbox_lock;
char *var_virtual_mailbox_maps;
long long var_virtual_minimum_uid;
char *var_virtual_transport;
char *var_virtual_uid_maps;
/* END variables */

/*
 * The registry. Keep it sorted by name (param_find() does a binary search and
 * test_config checks the order); pattern entries ("*_suffix") come last.
 * A NULL default is computed at run time by params_computed_default().
 */
const struct param_def param_table[] = {
    {"2bounce_notice_recipient", PARAM_STR, "postmaster", 0, 0, &var_2bounce_notice_recipient,
     "Recipient of undeliverable-bounce (double bounce) notices."},
    {"access_map_defer_code", PARAM_INT, "450", 400, 599, &var_access_map_defer_code,
     "SMTP reply code for a DEFER or a 4xx action in an access table."},
    {"access_map_reject_code", PARAM_INT, "554", 500, 599, &var_access_map_reject_code,
     "SMTP reply code for a REJECT action in an access table."},
    {"alias_database", PARAM_STR, "hash:/etc/aliases", 0, 0, &var_alias_database,
     "Alias databases built by newaliases and \"sendmail -bi\"."},
    {"alias_maps", PARAM_STR, "hash:/etc/aliases", 0, 0, &var_alias_maps,
     "Alias tables used by local delivery."},
    {"allow_mail_to_commands", PARAM_STR, "alias, forward", 0, 0, &var_allow_mail_to_commands,
     "Where local delivery may run a command: alias, forward, include."},
    {"allow_mail_to_files", PARAM_STR, "alias, forward", 0, 0, &var_allow_mail_to_files,
     "Where local delivery may write to a \"/file\": alias, forward, include."},
    {"allow_min_user", PARAM_BOOL, "no", 0, 0, &var_allow_min_user,
     "Allow a recipient address that starts with \"-\"."},
    {"allow_percent_hack", PARAM_BOOL, "yes", 0, 0, &var_allow_percent_hack,
     "Rewrite \"user%domain\" into \"user@domain\"."},
    {"allow_untrusted_routing", PARAM_BOOL, "no", 0, 0, &var_allow_untrusted_routing,
     "Forward mail with sender-specified routing (user@domain@domain) from untrusted clients."},
    {"always_add_missing_headers", PARAM_BOOL, "no", 0, 0, &var_always_add_missing_headers,
     "Add missing From:, To:, Date: and Message-ID: headers also to mail from remote clients."},
    {"always_bcc", PARAM_STR, "", 0, 0, &var_always_bcc,
     "Optional address that receives a blind carbon copy of each message."},
    {"anvil_rate_time_unit", PARAM_TIME, "60s", 1, 0, &var_anvil_rate_time_unit,
     "Time unit of the client connection and message rate limits."},
    {"anvil_status_update_time", PARAM_TIME, "600s", 1, 0, &var_anvil_status_update_time,
     "How often the connection limit service logs its peak usage."},
    {"append_at_myorigin", PARAM_BOOL, "yes", 0, 0, &var_append_at_myorigin,
     "Append @$myorigin to addresses without a domain in locally submitted mail."},
    {"append_dot_mydomain", PARAM_BOOL, "no", 0, 0, &var_append_dot_mydomain,
     "Append .$mydomain to addresses of the form user@host."},
    {"authorized_flush_users", PARAM_STR, "static:anyone", 0, 0, &var_authorized_flush_users,
     "Users who may flush the queue."},
    {"authorized_mailq_users", PARAM_STR, "static:anyone", 0, 0, &var_authorized_mailq_users,
     "Users who may list the queue."},
    {"authorized_submit_users", PARAM_STR, "static:anyone", 0, 0, &var_authorized_submit_users,
     "Users who may submit mail with the sendmail command."},
    {"biff", PARAM_BOOL, "no", 0, 0, &var_biff,
     "Accepted for compatibility; Petrel sends no biff notifications."},
    {"body_checks", PARAM_STR, "", 0, 0, &var_body_checks,
     "Lookup tables applied to every line of the message body."},
    {"body_checks_size_limit", PARAM_INT, "51200", 0, 0, &var_body_checks_size_limit,
     "How much of each body part body_checks inspects, in bytes."},
    {"bounce_notice_recipient", PARAM_STR, "postmaster", 0, 0, &var_bounce_notice_recipient,
     "Recipient of notices about bounced mail (notify_classes bounce)."},
    {"bounce_queue_lifetime", PARAM_TIME, "5d", 0, 0, &var_bounce_queue_lifetime,
     "How long a bounce message stays queued before it is discarded."},
    {"bounce_service_name", PARAM_STR, "bounce", 0, 0, &var_bounce_service_name,
     "Name of the bounce service in master.cf."},
    {"bounce_size_limit", PARAM_INT, "50000", 1, 0, &var_bounce_size_limit,
     "How much of an undeliverable message is returned with a bounce, in bytes."},
    {"bounce_template_file", PARAM_STR, "", 0, 0, &var_bounce_template_file,
     "Optional file with templates for delivery status notifications."},
    {"broken_sasl_auth_clients", PARAM_BOOL, "no", 0, 0, &var_broken_sasl_auth_clients,
     "Also announce AUTH in the obsolete \"AUTH=\" form."},
    {"canonical_classes", PARAM_STR, "envelope_sender, envelope_recipient, header_sender, header_recipient", 0, 0, &var_canonical_classes,
     "Which addresses canonical_maps rewrites."},
    {"canonical_maps", PARAM_STR, "", 0, 0, &var_canonical_maps,
     "Address rewriting tables for sender and recipient addresses."},
    {"cleanup_service_name", PARAM_STR, "cleanup", 0, 0, &var_cleanup_service_name,
     "Name of the cleanup service in master.cf."},
    {"command_directory", PARAM_STR, NULL, 0, 0, &var_command_directory,
     "Directory of the administration commands."},
    {"command_expansion_filter", PARAM_RAW, "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 0, 0, &var_command_expansion_filter,
     "Characters allowed in $name expansions of mailbox_command; others become underscores."},
    {"command_time_limit", PARAM_TIME, "1000s", 1, 0, &var_command_time_limit,
     "Time limit for delivery to an external command."},
    {"compatibility_level", PARAM_STR, "3.6", 0, 0, &var_compatibility_level,
     "Accepted for compatibility with existing main.cf files; Petrel has one set of defaults."},
    {"config_directory", PARAM_STR, NULL, 0, 0, &var_config_directory,
     "Directory with main.cf and master.cf (-c or PETREL_CONFIG_DIR)."},
    {"content_filter", PARAM_STR, "", 0, 0, &var_content_filter,
     "After-queue content filter, as transport:nexthop."},
    {"cyrus_sasl_config_path", PARAM_STR, "", 0, 0, &var_cyrus_sasl_config_path,
     "Where Cyrus SASL looks for its configuration file; empty for the library default."},
    {"daemon_directory", PARAM_STR, NULL, 0, 0, &var_daemon_directory,
     "Directory of the Petrel daemon programs."},
    {"daemon_timeout", PARAM_TIME, "18000s", 1, 0, &var_daemon_timeout,
     "How long a daemon may work on one request before it is killed."},
    {"data_directory", PARAM_STR, NULL, 0, 0, &var_data_directory,
     "Directory for writable data such as caches and random seeds."},
    {"debug_peer_level", PARAM_INT, "2", 1, 0, &var_debug_peer_level,
     "Verbose logging level added for clients or servers in debug_peer_list."},
    {"debug_peer_list", PARAM_STR, "", 0, 0, &var_debug_peer_list,
     "Hosts or networks for which verbose logging is enabled."},
    {"default_database_type", PARAM_STR, "hash", 0, 0, &var_default_database_type,
     "Table type used when newaliases or \"petrel map\" get no type."},
    {"default_delivery_slot_cost", PARAM_INT, "5", 0, 0, &var_default_delivery_slot_cost,
     "How often a message may preempt others in the scheduler."},
    {"default_destination_concurrency_failed_cohort_limit", PARAM_INT, "1", 0, 0, &var_default_destination_concurrency_failed_cohort_limit,
     "Failed connection cohorts after which a destination is declared dead."},
    {"default_destination_concurrency_limit", PARAM_INT, "20", 2, 0, &var_default_destination_concurrency_limit,
     "Default limit on parallel deliveries to one destination."},
    {"default_destination_concurrency_negative_feedback", PARAM_STR, "1/concurrency", 0, 0, &var_default_destination_concurrency_negative_feedback,
     "Concurrency decrease after a delivery failure."},
    {"default_destination_concurrency_positive_feedback", PARAM_STR, "1/concurrency", 0, 0, &var_default_destination_concurrency_positive_feedback,
     "Concurrency increase after a delivery success."},
    {"default_destination_rate_delay", PARAM_TIME, "0s", 0, 0, &var_default_destination_rate_delay,
     "Default delay between deliveries to one destination; 0 disables."},
    {"default_destination_recipient_limit", PARAM_INT, "50", 1, 0, &var_default_destination_recipient_limit,
     "Default maximum number of recipients per delivery."},
    {"default_extra_recipient_limit", PARAM_INT, "1000", 1, 0, &var_default_extra_recipient_limit,
     "Default number of in-memory recipients beyond the recipient limit."},
    {"default_privs", PARAM_STR, "nobody", 0, 0, &var_default_privs,
     "Account used for deliveries to commands and files from aliases and .forward."},
    {"default_process_limit", PARAM_INT, "100", 1, 0, &var_default_process_limit,
     "Default maximum number of processes per master.cf service."},
    {"default_rbl_reply", PARAM_RAW, "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}", 0, 0, &var_default_rbl_reply,
     "Template for the reply to a client listed in a DNS blocklist."},
    {"default_recipient_limit", PARAM_INT, "20000", 1, 0, &var_default_recipient_limit,
     "Default limit on in-memory recipients per message delivery transport."},
    {"default_transport", PARAM_STR, "smtp", 0, 0, &var_default_transport,
     "Transport for mail to remote destinations that transport_maps does not route."},
    {"default_verp_delimiters", PARAM_STR, "+=", 0, 0, &var_default_verp_delimiters,
     "Delimiters for VERP sender addresses."},
    {"defer_code", PARAM_INT, "450", 400, 599, &var_defer_code,
     "SMTP reply code for a DEFER restriction."},
    {"defer_service_name", PARAM_STR, "defer", 0, 0, &var_defer_service_name,
     "Name of the defer service in master.cf."},
    {"defer_transports", PARAM_STR, "", 0, 0, &var_defer_transports,
     "Transports whose mail is deferred until \"petrel flush\"."},
    {"delay_logging_resolution_limit", PARAM_INT, "2", 0, 6, &var_delay_logging_resolution_limit,
     "Digits after the decimal point in delay= and delays= log fields."},
    {"delay_notice_recipient", PARAM_STR, "postmaster", 0, 0, &var_delay_notice_recipient,
     "Recipient of delay notices (notify_classes delay)."},
    {"delay_warning_time", PARAM_TIME, "0h", 0, 0, &var_delay_warning_time,
     "Time after which a sender is warned that mail is delayed; 0 disables."},
    {"deliver_lock_attempts", PARAM_INT, "20", 1, 0, &var_deliver_lock_attempts,
     "Attempts to lock a mailbox (fcntl, flock or dot-lock) before delivery is deferred."},
    {"deliver_lock_delay", PARAM_TIME, "1s", 1, 0, &var_deliver_lock_delay,
     "Time between attempts to lock a mailbox."},
    {"disable_dns_lookups", PARAM_BOOL, "no", 0, 0, &var_disable_dns_lookups,
     "Do not use DNS for mail routing (see smtp_host_lookup)."},
    {"disable_mime_input_processing", PARAM_BOOL, "no", 0, 0, &var_disable_mime_input_processing,
     "Treat message content as plain text, without MIME parsing."},
    {"disable_mime_output_conversion", PARAM_BOOL, "no", 0, 0, &var_disable_mime_output_conversion,
     "Never convert 8BITMIME to 7BIT when the server lacks 8BITMIME."},
    {"disable_vrfy_command", PARAM_BOOL, "no", 0, 0, &var_disable_vrfy_command,
     "Reject the SMTP VRFY command."},
    {"dns_servers", PARAM_STR, "", 0, 0, &var_dns_servers,
     "DNS servers as ip[:port] list; empty means the system resolver."},
    {"double_bounce_sender", PARAM_STR, "double-bounce", 0, 0, &var_double_bounce_sender,
     "Sender address of double-bounce notices; mail to it is discarded."},
    {"duplicate_filter_limit", PARAM_INT, "1000", 0, 0, &var_duplicate_filter_limit,
     "Recipients remembered to suppress duplicates during alias expansion."},
    {"empty_address_recipient", PARAM_STR, "MAILER-DAEMON", 0, 0, &var_empty_address_recipient,
     "Recipient of mail addressed to the null sender."},
    {"enable_original_recipient", PARAM_BOOL, "yes", 0, 0, &var_enable_original_recipient,
     "Record the original recipient address (orig_to=)."},
    {"error_notice_recipient", PARAM_STR, "postmaster", 0, 0, &var_error_notice_recipient,
     "Recipient of notices about mail system errors."},
    {"expand_owner_alias", PARAM_BOOL, "no", 0, 0, &var_expand_owner_alias,
     "Use the owner-alias expansion as the sender of alias mail."},
    {"export_environment", PARAM_STR, "TZ LANG", 0, 0, &var_export_environment,
     "Environment variables passed to external commands."},
    {"fallback_transport", PARAM_STR, "", 0, 0, &var_fallback_transport,
     "Transport for recipients that local delivery does not find."},
    {"fallback_transport_maps", PARAM_STR, "", 0, 0, &var_fallback_transport_maps,
     "Per-recipient fallback transports for local delivery."},
    {"fork_attempts", PARAM_INT, "5", 1, 0, &var_fork_attempts,
     "How often to retry a failed fork."},
    {"fork_delay", PARAM_TIME, "1s", 1, 0, &var_fork_delay,
     "Delay between fork attempts."},
    {"forward_path", PARAM_RAW, "$home/.forward${recipient_delimiter}${extension}, $home/.forward", 0, 0, &var_forward_path,
     "Where local delivery looks for .forward files."},
    {"hash_queue_depth", PARAM_INT, "1", 1, 4, &var_hash_queue_depth,
     "Levels of subdirectories in hashed queues."},
    {"hash_queue_names", PARAM_STR, "deferred, defer", 0, 0, &var_hash_queue_names,
     "Queues that are split into subdirectories."},
    {"header_address_token_limit", PARAM_INT, "10240", 1, 0, &var_header_address_token_limit,
     "Maximum number of tokens in one address header."},
    {"header_checks", PARAM_STR, "", 0, 0, &var_header_checks,
     "Lookup tables applied to each message header."},
    {"header_from_format", PARAM_STR, "standard", 0, 0, &var_header_from_format,
     "Format of a From: header that Petrel adds: standard or obsolete."},
    {"header_size_limit", PARAM_INT, "102400", 1, 0, &var_header_size_limit,
     "Maximum size of one message header, in bytes."},
    {"home_mailbox", PARAM_STR, "", 0, 0, &var_home_mailbox,
     "Mailbox relative to the home directory (\"Maildir/\" for Maildir)."},
    {"hopcount_limit", PARAM_INT, "50", 1, 0, &var_hopcount_limit,
     "Maximum number of Received: headers before mail is bounced as looping."},
    {"html_directory", PARAM_STR, "no", 0, 0, &var_html_directory,
     "Accepted for compatibility; not used."},
    {"ignore_mx_lookup_error", PARAM_BOOL, "no", 0, 0, &var_ignore_mx_lookup_error,
     "Fall back to the A record when the MX lookup fails temporarily."},
    {"import_environment", PARAM_STR, "TZ LANG=C PETREL_CONFIG_DIR", 0, 0, &var_import_environment,
     "Environment variables that daemons keep."},
    {"in_flow_delay", PARAM_TIME, "1s", 0, 10, &var_in_flow_delay,
     "Delay before a message is accepted when the queue manager falls behind."},
    {"inet_interfaces", PARAM_STR, "all", 0, 0, &var_inet_interfaces,
     "Network addresses the mail system listens on: all, loopback-only or a list."},
    {"inet_protocols", PARAM_STR, "all", 0, 0, &var_inet_protocols,
     "Address families used: all, ipv4, ipv6."},
    {"initial_destination_concurrency", PARAM_INT, "5", 1, 0, &var_initial_destination_concurrency,
     "Initial number of parallel deliveries to one destination."},
    {"internal_mail_filter_classes", PARAM_STR, "", 0, 0, &var_internal_mail_filter_classes,
     "Which internally generated mail goes through content filters and milters."},
    {"invalid_hostname_reject_code", PARAM_INT, "501", 400, 599, &var_invalid_hostname_reject_code,
     "SMTP reply code for reject_invalid_helo_hostname."},
    {"ipc_idle", PARAM_TIME, "5s", 1, 0, &var_ipc_idle,
     "How long an idle client connection to an internal service stays open."},
    {"ipc_timeout", PARAM_TIME, "3600s", 1, 0, &var_ipc_timeout,
     "Time limit for one request to an internal service."},
    {"ipc_ttl", PARAM_TIME, "1000s", 1, 0, &var_ipc_ttl,
     "How long a client connection to an internal service may be reused."},
    {"line_length_limit", PARAM_INT, "2048", 1, 0, &var_line_length_limit,
     "Longer SMTP and local submission lines are split or rejected, in bytes."},
    {"lmtp_connect_timeout", PARAM_TIME, "0s", 0, 0, &var_lmtp_connect_timeout,
     "LMTP connect timeout; 0 uses the system default."},
    {"lmtp_data_done_timeout", PARAM_TIME, "600s", 1, 0, &var_lmtp_data_done_timeout,
     "LMTP client timeout for the reply to the end of data."},
    {"lmtp_data_init_timeout", PARAM_TIME, "120s", 1, 0, &var_lmtp_data_init_timeout,
     "LMTP client timeout for the reply to DATA."},
    {"lmtp_data_xfer_timeout", PARAM_TIME, "180s", 1, 0, &var_lmtp_data_xfer_timeout,
     "LMTP client timeout while sending message content."},
    {"lmtp_lhlo_name", PARAM_STR, "$myhostname", 0, 0, &var_lmtp_lhlo_name,
     "Hostname the LMTP client sends in LHLO."},
    {"lmtp_lhlo_timeout", PARAM_TIME, "300s", 1, 0, &var_lmtp_lhlo_timeout,
     "LMTP client timeout for the greeting and the LHLO reply."},
    {"lmtp_mail_timeout", PARAM_TIME, "300s", 1, 0, &var_lmtp_mail_timeout,
     "LMTP client timeout for the reply to MAIL FROM."},
    {"lmtp_quit_timeout", PARAM_TIME, "300s", 1, 0, &var_lmtp_quit_timeout,
     "LMTP client timeout for the reply to QUIT."},
    {"lmtp_rcpt_timeout", PARAM_TIME, "300s", 1, 0, &var_lmtp_rcpt_timeout,
     "LMTP client timeout for the reply to RCPT TO."},
    {"lmtp_rset_timeout", PARAM_TIME, "20s", 1, 0, &var_lmtp_rset_timeout,
     "LMTP client timeout for the reply to RSET."},
    {"lmtp_sasl_auth_enable", PARAM_BOOL, "no", 0, 0, &var_lmtp_sasl_auth_enable,
     "Enable SASL authentication in the LMTP client."},
    {"lmtp_sasl_auth_soft_bounce", PARAM_BOOL, "yes", 0, 0, &var_lmtp_sasl_auth_soft_bounce,
     "The LMTP client's smtp_sasl_auth_soft_bounce."},
    {"lmtp_sasl_mechanism_filter", PARAM_STR, "", 0, 0, &var_lmtp_sasl_mechanism_filter,
     "SASL mechanisms the LMTP client may use."},
    {"lmtp_sasl_password_maps", PARAM_STR, "", 0, 0, &var_lmtp_sasl_password_maps,
     "LMTP client SASL credentials per destination."},
    {"lmtp_sasl_security_options", PARAM_STR, "noplaintext, noanonymous", 0, 0, &var_lmtp_sasl_security_options,
     "SASL security options of the LMTP client."},
    {"lmtp_sasl_tls_security_options", PARAM_STR, "$lmtp_sasl_security_options", 0, 0, &var_lmtp_sasl_tls_security_options,
     "SASL security options of the LMTP client over TLS."},
    {"lmtp_tcp_port", PARAM_STR, "24", 0, 0, &var_lmtp_tcp_port,
     "Default TCP port of the LMTP client."},
    {"lmtp_tls_security_level", PARAM_STR, "", 0, 0, &var_lmtp_tls_security_level,
     "Default TLS security level of the LMTP client."},
    {"local_command_shell", PARAM_STR, "", 0, 0, &var_local_command_shell,
     "Shell for command deliveries; empty runs simple commands without a shell."},
    {"local_destination_concurrency_limit", PARAM_INT, "2", 0, 0, &var_local_destination_concurrency_limit,
     "Parallel deliveries to one local recipient."},
    {"local_destination_recipient_limit", PARAM_INT, "1", 0, 0, &var_local_destination_recipient_limit,
     "Recipients per local delivery."},
    {"local_header_rewrite_clients", PARAM_STR, "permit_inet_interfaces", 0, 0, &var_local_header_rewrite_clients,
     "Clients whose message headers are rewritten with $myorigin and $mydomain."},
    {"local_recipient_maps", PARAM_STR, "unix:passwd.byname $alias_maps", 0, 0, &var_local_recipient_maps,
     "Tables of valid local recipients; empty accepts any local recipient."},
    {"local_transport", PARAM_STR, "local:$myhostname", 0, 0, &var_local_transport,
     "Transport for domains in mydestination."},
    {"luser_relay", PARAM_RAW, "", 0, 0, &var_luser_relay,
     "Where mail for unknown local recipients goes."},
    {"mail_name", PARAM_STR, "Petrel", 0, 0, &var_mail_name,
     "Mail system name in the SMTP greeting and Received: headers."},
    {"mail_owner", PARAM_STR, "petrel", 0, 0, &var_mail_owner,
     "Account that owns the queue and runs most daemons."},
    {"mail_spool_directory", PARAM_STR, "/var/mail", 0, 0, &var_mail_spool_directory,
     "Directory of UNIX-style mailboxes."},
    {"mail_version", PARAM_STR, NULL, 0, 0, &var_mail_version,
     "The Petrel version."},
    {"mailbox_command", PARAM_RAW, "", 0, 0, &var_mailbox_command,
     "Command that local delivery runs instead of writing the mailbox."},
    {"mailbox_command_maps", PARAM_STR, "", 0, 0, &var_mailbox_command_maps,
     "Per-recipient mailbox_command tables."},
    {"mailbox_delivery_lock", PARAM_STR, "fcntl, dotlock", 0, 0, &var_mailbox_delivery_lock,
     "Locks used for UNIX-style mailboxes: fcntl, flock, dotlock."},
    {"mailbox_size_limit", PARAM_INT, "51200000", 0, 0, &var_mailbox_size_limit,
     "Maximum size of a mailbox or maildir file; 0 means no limit."},
    {"mailbox_transport", PARAM_STR, "", 0, 0, &var_mailbox_transport,
     "Transport that receives local mail instead of the mailbox."},
    {"mailbox_transport_maps", PARAM_STR, "", 0, 0, &var_mailbox_transport_maps,
     "Per-recipient mailbox_transport tables."},
    {"maillog_file", PARAM_STR, "", 0, 0, &var_maillog_file,
     "File that receives the log instead of syslog (/dev/stdout with start-fg)."},
    {"maillog_format", PARAM_STR, "text", 0, 0, &var_maillog_format,
     "Format of maillog_file lines: text or json."},
    {"mailq_path", PARAM_STR, NULL, 0, 0, &var_mailq_path,
     "Path of the mailq command."},
    {"manpage_directory", PARAM_STR, "no", 0, 0, &var_manpage_directory,
     "Accepted for compatibility; not used."},
    {"maps_rbl_reject_code", PARAM_INT, "554", 400, 599, &var_maps_rbl_reject_code,
     "SMTP reply code for a client listed in a DNS blocklist."},
    {"masquerade_classes", PARAM_STR, "envelope_sender, header_sender, header_recipient", 0, 0, &var_masquerade_classes,
     "Which addresses masquerade_domains rewrites."},
    {"masquerade_domains", PARAM_STR, "", 0, 0, &var_masquerade_domains,
     "Domains whose subdomains are hidden in outgoing addresses."},
    {"masquerade_exceptions", PARAM_STR, "", 0, 0, &var_masquerade_exceptions,
     "User names that are never masqueraded."},
    {"max_idle", PARAM_TIME, "100s", 1, 0, &var_max_idle,
     "How long an idle daemon waits for a request before it exits."},
    {"max_use", PARAM_INT, "100", 1, 0, &var_max_use,
     "Requests a daemon serves before it exits."},
    {"maximal_backoff_time", PARAM_TIME, "4000s", 1, 0, &var_maximal_backoff_time,
     "Longest time between delivery attempts of deferred mail."},
    {"maximal_queue_lifetime", PARAM_TIME, "5d", 0, 0, &var_maximal_queue_lifetime,
     "How long undeliverable mail stays queued before it bounces."},
    {"message_reject_characters", PARAM_STR, "", 0, 0, &var_message_reject_characters,
     "Characters that cause a message to be rejected."},
    {"message_size_limit", PARAM_INT, "10240000", 0, 0, &var_message_size_limit,
     "Maximum message size in bytes, envelope included; 0 means no limit."},
    {"message_strip_characters", PARAM_STR, "", 0, 0, &var_message_strip_characters,
     "Characters removed from message content."},
    {"message_total_size_limit", PARAM_INT, "0", 0, 0, &var_message_total_size_limit,
     "Maximum message size times number of accepted recipients; 0 means no limit."},
    {"meta_directory", PARAM_STR, "$config_directory", 0, 0, &var_meta_directory,
     "Accepted for compatibility; same as config_directory."},
    {"milter_command_timeout", PARAM_TIME, "30s", 1, 0, &var_milter_command_timeout,
     "Time limit for a milter to answer one SMTP event."},
    {"milter_connect_macros", PARAM_STR, "j {daemon_name} {daemon_addr} v _", 0, 0, &var_milter_connect_macros,
     "Macros sent to milters after connect."},
    {"milter_connect_timeout", PARAM_TIME, "30s", 1, 0, &var_milter_connect_timeout,
     "Time limit for connecting to a milter."},
    {"milter_connection_reuse", PARAM_BOOL, "yes", 0, 0, &var_milter_connection_reuse,
     "Keep a milter connection for the next session (QUIT_NC) when the filter is at rest."},
    {"milter_content_timeout", PARAM_TIME, "300s", 1, 0, &var_milter_content_timeout,
     "Time limit for sending message content to a milter and reading its answer."},
    {"milter_data_macros", PARAM_STR, "i", 0, 0, &var_milter_data_macros,
     "Macros sent to milters after DATA."},
    {"milter_default_action", PARAM_STR, "tempfail", 0, 0, &var_milter_default_action,
     "What to do when a milter fails: accept, reject, tempfail, quarantine."},
    {"milter_end_of_data_macros", PARAM_STR, "i", 0, 0, &var_milter_end_of_data_macros,
     "Macros sent to milters at the end of the message."},
    {"milter_end_of_header_macros", PARAM_STR, "i", 0, 0, &var_milter_end_of_header_macros,
     "Macros sent to milters at the end of the headers."},
    {"milter_header_checks", PARAM_STR, "", 0, 0, &var_milter_header_checks,
     "header_checks tables applied to headers that milters add."},
    {"milter_helo_macros", PARAM_STR, "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}", 0, 0, &var_milter_helo_macros,
     "Macros sent to milters after HELO/EHLO."},
    {"milter_macro_daemon_name", PARAM_STR, "$myhostname", 0, 0, &var_milter_macro_daemon_name,
     "The {daemon_name} macro value."},
    {"milter_macro_defaults", PARAM_STR, "", 0, 0, &var_milter_macro_defaults,
     "Default values for milter macros that are not available."},
    {"milter_macro_v", PARAM_STR, "$mail_name $mail_version", 0, 0, &var_milter_macro_v,
     "The {v} macro value."},
    {"milter_mail_macros", PARAM_STR, "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}", 0, 0, &var_milter_mail_macros,
     "Macros sent to milters after MAIL FROM."},
    {"milter_protocol", PARAM_STR, "6", 0, 0, &var_milter_protocol,
     "Milter protocol version: 2 to 6."},
    {"milter_rcpt_macros", PARAM_STR, "i {rcpt_addr} {rcpt_host} {rcpt_mailer}", 0, 0, &var_milter_rcpt_macros,
     "Macros sent to milters after RCPT TO."},
    {"milter_unknown_command_macros", PARAM_STR, "", 0, 0, &var_milter_unknown_command_macros,
     "Macros sent to milters after an unknown SMTP command."},
    {"mime_boundary_length_limit", PARAM_INT, "2048", 1, 0, &var_mime_boundary_length_limit,
     "Maximum length of a MIME boundary string."},
    {"mime_header_checks", PARAM_STR, "$header_checks", 0, 0, &var_mime_header_checks,
     "Lookup tables applied to MIME-related message headers."},
    {"mime_nesting_limit", PARAM_INT, "100", 1, 0, &var_mime_nesting_limit,
     "Maximum depth of nested MIME parts."},
    {"minimal_backoff_time", PARAM_TIME, "300s", 1, 0, &var_minimal_backoff_time,
     "Shortest time between delivery attempts of deferred mail."},
    {"multi_recipient_bounce_reject_code", PARAM_INT, "550", 400, 599, &var_multi_recipient_bounce_reject_code,
     "SMTP reply code for reject_multi_recipient_bounce."},
    {"mydestination", PARAM_STR, "$myhostname, localhost.$mydomain, localhost", 0, 0, &var_mydestination,
     "Domains delivered locally."},
    {"mydomain", PARAM_STR, NULL, 0, 0, &var_mydomain,
     "Internet domain of this system; default myhostname minus its first label."},
    {"myhostname", PARAM_STR, NULL, 0, 0, &var_myhostname,
     "Fully qualified host name of this system."},
    {"mynetworks", PARAM_STR, NULL, 0, 0, &var_mynetworks,
     "Trusted client networks; default from mynetworks_style."},
    {"mynetworks_style", PARAM_STR, "host", 0, 0, &var_mynetworks_style,
     "How mynetworks is computed: host, subnet or class."},
    {"myorigin", PARAM_STR, "$myhostname", 0, 0, &var_myorigin,
     "Domain appended to locally posted mail."},
    {"nested_header_checks", PARAM_STR, "$header_checks", 0, 0, &var_nested_header_checks,
     "Lookup tables applied to headers of attached messages."},
    {"newaliases_path", PARAM_STR, NULL, 0, 0, &var_newaliases_path,
     "Path of the newaliases command."},
    {"non_fqdn_reject_code", PARAM_INT, "504", 400, 599, &var_non_fqdn_reject_code,
     "SMTP reply code for reject_non_fqdn_* restrictions."},
    {"non_smtpd_milters", PARAM_STR, "", 0, 0, &var_non_smtpd_milters,
     "Milters for mail that does not arrive by SMTP."},
    /* Postfix's default lacks 2bounce, so a bounce that cannot be delivered is
     * dropped there; we keep it for the postmaster, which loses nothing. */
    {"notify_classes", PARAM_STR, "resource, software, 2bounce", 0, 0, &var_notify_classes,
     "Problems reported to the postmaster: bounce, 2bounce, data, delay, policy, protocol, resource, software."},
    {"owner_request_special", PARAM_BOOL, "yes", 0, 0, &var_owner_request_special,
     "Treat owner-name and name-request addresses specially."},
    {"parent_domain_matches_subdomains", PARAM_STR, "debug_peer_list, fast_flush_domains, mynetworks, permit_mbox_mail_from_mx, relay_domains, smtpd_access_maps", 0, 0, &var_parent_domain_matches_subdomains,
     "Features where a domain also matches its subdomains."},
    {"permit_mx_backup_networks", PARAM_STR, "", 0, 0, &var_permit_mx_backup_networks,
     "Networks where primary MX hosts must be for permit_mx_backup."},
    {"prepend_delivered_header", PARAM_STR, "command, file, forward", 0, 0, &var_prepend_delivered_header,
     "Deliveries that add a Delivered-To: header."},
    {"process_id_directory", PARAM_STR, "pid", 0, 0, &var_process_id_directory,
     "Directory for lock files, relative to queue_directory."},
    {"propagate_unmatched_extensions", PARAM_STR, "canonical, virtual", 0, 0, &var_propagate_unmatched_extensions,
     "Rewrites that keep the address extension."},
    {"proxy_interfaces", PARAM_STR, "", 0, 0, &var_proxy_interfaces,
     "Addresses at which the system receives mail through a proxy or NAT."},
    {"qmgr_clog_warn_time", PARAM_TIME, "300s", 0, 0, &var_qmgr_clog_warn_time,
     "Minimal time between warnings about a clogged active queue."},
    {"qmgr_fudge_factor", PARAM_INT, "100", 10, 100, &var_qmgr_fudge_factor,
     "Percentage of delivery slots for mail with few recipients."},
    {"qmgr_message_active_limit", PARAM_INT, "20000", 1, 0, &var_qmgr_message_active_limit,
     "Maximum number of messages in the active queue."},
    {"qmgr_message_recipient_limit", PARAM_INT, "20000", 1, 0, &var_qmgr_message_recipient_limit,
     "Maximum number of in-memory recipients in the active queue."},
    {"qmgr_message_recipient_minimum", PARAM_INT, "10", 1, 0, &var_qmgr_message_recipient_minimum,
     "Minimum in-memory recipients per message."},
    {"queue_directory", PARAM_STR, NULL, 0, 0, &var_queue_directory,
     "Directory of the mail queue."},
    {"queue_file_attribute_count_limit", PARAM_INT, "100", 1, 0, &var_queue_file_attribute_count_limit,
     "Maximum named attributes in one queue file."},
    {"queue_minfree", PARAM_INT, "0", 0, 0, &var_queue_minfree,
     "Free bytes required on the queue file system; 0 means only the message size rule."},
    {"queue_run_delay", PARAM_TIME, "300s", 1, 0, &var_queue_run_delay,
     "How often the queue manager scans the deferred queue."},
    {"queue_service_name", PARAM_STR, "qmgr", 0, 0, &var_queue_service_name,
     "Name of the queue manager service in master.cf."},
    {"rbl_reply_maps", PARAM_STR, "", 0, 0, &var_rbl_reply_maps,
     "Reply templates per DNS blocklist domain."},
    {"readme_directory", PARAM_STR, "no", 0, 0, &var_readme_directory,
     "Accepted for compatibility; not used."},
    {"receive_override_options", PARAM_STR, "", 0, 0, &var_receive_override_options,
     "Per-service options: no_unknown_recipient_checks, no_address_mappings, no_header_body_checks, no_milters."},
    {"recipient_bcc_maps", PARAM_STR, "", 0, 0, &var_recipient_bcc_maps,
     "Blind carbon copy addresses per recipient."},
    {"recipient_canonical_classes", PARAM_STR, "envelope_recipient, header_recipient", 0, 0, &var_recipient_canonical_classes,
     "Which addresses recipient_canonical_maps rewrites."},
    {"recipient_canonical_maps", PARAM_STR, "", 0, 0, &var_recipient_canonical_maps,
     "Address rewriting tables for recipient addresses."},
    {"recipient_delimiter", PARAM_STR, "", 0, 0, &var_recipient_delimiter,
     "Separators between user name and address extension, such as +."},
    {"reject_code", PARAM_INT, "554", 400, 599, &var_reject_code,
     "SMTP reply code for a REJECT restriction."},
    {"relay_domains", PARAM_STR, "", 0, 0, &var_relay_domains,
     "Remote domains this system relays mail to."},
    {"relay_domains_reject_code", PARAM_INT, "554", 400, 599, &var_relay_domains_reject_code,
     "SMTP reply code for relay access denied."},
    {"relay_recipient_maps", PARAM_STR, "", 0, 0, &var_relay_recipient_maps,
     "Valid recipients in relay_domains."},
    {"relay_transport", PARAM_STR, "relay", 0, 0, &var_relay_transport,
     "Transport for mail to relay_domains."},
    {"relayhost", PARAM_STR, "", 0, 0, &var_relayhost,
     "Next-hop host for remote mail; empty means direct delivery."},
    {"relocated_maps", PARAM_STR, "", 0, 0, &var_relocated_maps,
     "Tables of users or domains that moved."},
    {"remote_header_rewrite_domain", PARAM_STR, "", 0, 0, &var_remote_header_rewrite_domain,
     "Domain appended to incomplete addresses in headers of remote mail."},
    {"require_home_directory", PARAM_BOOL, "no", 0, 0, &var_require_home_directory,
     "Require the recipient's home directory to exist before mailbox delivery."},
    {"resolve_dequoted_address", PARAM_BOOL, "yes", 0, 0, &var_resolve_dequoted_address,
     "Resolve addresses after removing quotes."},
    {"resolve_null_domain", PARAM_BOOL, "no", 0, 0, &var_resolve_null_domain,
     "Resolve \"user@\" as a remote address."},
    {"resolve_numeric_domain", PARAM_BOOL, "no", 0, 0, &var_resolve_numeric_domain,
     "Resolve user@ipaddress as local when the address is ours."},
    {"rewrite_service_name", PARAM_STR, "rewrite", 0, 0, &var_rewrite_service_name,
     "Name of the address rewriting service in master.cf."},
    {"sample_directory", PARAM_STR, "no", 0, 0, &var_sample_directory,
     "Accepted for compatibility; not used."},
    {"sender_bcc_maps", PARAM_STR, "", 0, 0, &var_sender_bcc_maps,
     "Blind carbon copy addresses per sender."},
    {"sender_canonical_classes", PARAM_STR, "envelope_sender, header_sender", 0, 0, &var_sender_canonical_classes,
     "Which addresses sender_canonical_maps rewrites."},
    {"sender_canonical_maps", PARAM_STR, "", 0, 0, &var_sender_canonical_maps,
     "Address rewriting tables for sender addresses."},
    {"sender_dependent_default_transport_maps", PARAM_STR, "", 0, 0, &var_sender_dependent_default_transport_maps,
     "default_transport per sender."},
    {"sender_dependent_relayhost_maps", PARAM_STR, "", 0, 0, &var_sender_dependent_relayhost_maps,
     "relayhost per sender."},
    {"sendmail_path", PARAM_STR, NULL, 0, 0, &var_sendmail_path,
     "Path of the sendmail command."},
    {"service_throttle_time", PARAM_TIME, "60s", 1, 0, &var_service_throttle_time,
     "How long master waits before restarting a service that failed to start."},
    {"setgid_group", PARAM_STR, "petreldrop", 0, 0, &var_setgid_group,
     "Group of the mail submission and queue management commands."},
    {"shlib_directory", PARAM_STR, "no", 0, 0, &var_shlib_directory,
     "Accepted for compatibility; not used."},
    {"show_user_unknown_table_name", PARAM_BOOL, "yes", 0, 0, &var_show_user_unknown_table_name,
     "Name the table in \"user unknown\" replies."},
    {"showq_service_name", PARAM_STR, "showq", 0, 0, &var_showq_service_name,
     "Name of the showq service in master.cf."},
    {"smtp_address_preference", PARAM_STR, "any", 0, 0, &var_smtp_address_preference,
     "Address family tried first by the SMTP client: any, ipv4, ipv6."},
    {"smtp_always_send_ehlo", PARAM_BOOL, "yes", 0, 0, &var_smtp_always_send_ehlo,
     "Always send EHLO at the start of an SMTP session."},
    {"smtp_bind_address", PARAM_STR, "", 0, 0, &var_smtp_bind_address,
     "Local IPv4 address for outgoing SMTP connections."},
    {"smtp_bind_address6", PARAM_STR, "", 0, 0, &var_smtp_bind_address6,
     "Local IPv6 address for outgoing SMTP connections."},
    {"smtp_body_checks", PARAM_STR, "", 0, 0, &var_smtp_body_checks,
     "body_checks applied by the SMTP client."},
    {"smtp_connect_timeout", PARAM_TIME, "30s", 0, 0, &var_smtp_connect_timeout,
     "SMTP client timeout for completing a TCP connection."},
    {"smtp_connection_cache_destinations", PARAM_STR, "", 0, 0, &var_smtp_connection_cache_destinations,
     "Destinations whose SMTP connections are always cached."},
    {"smtp_connection_cache_on_demand", PARAM_BOOL, "yes", 0, 0, &var_smtp_connection_cache_on_demand,
     "Cache SMTP connections to destinations with a backlog."},
    {"smtp_connection_cache_time_limit", PARAM_TIME, "2s", 1, 0, &var_smtp_connection_cache_time_limit,
     "How long an unused cached SMTP connection stays open."},
    {"smtp_connection_reuse_time_limit", PARAM_TIME, "300s", 1, 0, &var_smtp_connection_reuse_time_limit,
     "How long a cached SMTP connection may be reused."},
    {"smtp_data_done_timeout", PARAM_TIME, "600s", 1, 0, &var_smtp_data_done_timeout,
     "SMTP client timeout for the reply to the end of data."},
    {"smtp_data_init_timeout", PARAM_TIME, "120s", 1, 0, &var_smtp_data_init_timeout,
     "SMTP client timeout for the reply to DATA."},
    {"smtp_data_xfer_timeout", PARAM_TIME, "180s", 1, 0, &var_smtp_data_xfer_timeout,
     "SMTP client timeout while sending message content."},
    {"smtp_defer_if_no_mx_address_found", PARAM_BOOL, "no", 0, 0, &var_smtp_defer_if_no_mx_address_found,
     "Defer mail when no MX host has an address."},
    {"smtp_dns_support_level", PARAM_STR, "", 0, 0, &var_smtp_dns_support_level,
     "DNS support of the SMTP client: disabled, enabled, dnssec."},
    {"smtp_fallback_relay", PARAM_STR, "", 0, 0, &var_smtp_fallback_relay,
     "Hosts tried when the destination's MX hosts fail."},
    {"smtp_generic_maps", PARAM_STR, "", 0, 0, &var_smtp_generic_maps,
     "Address rewriting of outgoing SMTP mail."},
    {"smtp_header_checks", PARAM_STR, "", 0, 0, &var_smtp_header_checks,
     "header_checks applied by the SMTP client."},
    {"smtp_helo_name", PARAM_STR, "$myhostname", 0, 0, &var_smtp_helo_name,
     "Hostname the SMTP client sends in HELO/EHLO."},
    {"smtp_helo_timeout", PARAM_TIME, "300s", 1, 0, &var_smtp_helo_timeout,
     "SMTP client timeout for the greeting and the HELO/EHLO reply."},
    {"smtp_host_lookup", PARAM_STR, "dns", 0, 0, &var_smtp_host_lookup,
     "How the SMTP client finds host addresses: dns, native."},
    {"smtp_line_length_limit", PARAM_INT, "998", 0, 0, &var_smtp_line_length_limit,
     "Longer lines are folded by the SMTP client; 0 disables."},
    {"smtp_mail_timeout", PARAM_TIME, "300s", 1, 0, &var_smtp_mail_timeout,
     "SMTP client timeout for the reply to MAIL FROM."},
    {"smtp_mime_header_checks", PARAM_STR, "", 0, 0, &var_smtp_mime_header_checks,
     "mime_header_checks applied by the SMTP client."},
    {"smtp_mx_address_limit", PARAM_INT, "5", 0, 0, &var_smtp_mx_address_limit,
     "Maximum number of MX host addresses tried; 0 means no limit."},
    {"smtp_mx_session_limit", PARAM_INT, "2", 0, 0, &var_smtp_mx_session_limit,
     "Maximum number of SMTP sessions per delivery; 0 means no limit."},
    {"smtp_quit_timeout", PARAM_TIME, "300s", 1, 0, &var_smtp_quit_timeout,
     "SMTP client timeout for the reply to QUIT."},
    {"smtp_rcpt_timeout", PARAM_TIME, "300s", 1, 0, &var_smtp_rcpt_timeout,
     "SMTP client timeout for the reply to RCPT TO."},
    {"smtp_rset_timeout", PARAM_TIME, "20s", 1, 0, &var_smtp_rset_timeout,
     "SMTP client timeout for the reply to RSET."},
    {"smtp_sasl_auth_enable", PARAM_BOOL, "no", 0, 0, &var_smtp_sasl_auth_enable,
     "Enable SASL authentication in the SMTP client."},
    {"smtp_sasl_auth_soft_bounce", PARAM_BOOL, "yes", 0, 0, &var_smtp_sasl_auth_soft_bounce,
     "Defer, not bounce, mail when a server answers SASL authentication with 5xx."},
    {"smtp_sasl_mechanism_filter", PARAM_STR, "", 0, 0, &var_smtp_sasl_mechanism_filter,
     "SASL mechanisms the SMTP client may use."},
    {"smtp_sasl_password_maps", PARAM_STR, "", 0, 0, &var_smtp_sasl_password_maps,
     "SMTP client SASL credentials per destination."},
    {"smtp_sasl_security_options", PARAM_STR, "noplaintext, noanonymous", 0, 0, &var_smtp_sasl_security_options,
     "SASL security options of the SMTP client."},
    {"smtp_sasl_tls_security_options", PARAM_STR, "$smtp_sasl_security_options", 0, 0, &var_smtp_sasl_tls_security_options,
     "SASL security options of the SMTP client over TLS."},
    {"smtp_sasl_type", PARAM_STR, "cyrus", 0, 0, &var_smtp_sasl_type,
     "SASL implementation of the SMTP client."},
    {"smtp_send_xforward_command", PARAM_BOOL, "no", 0, 0, &var_smtp_send_xforward_command,
     "Send XFORWARD when the server announces it."},
    {"smtp_skip_5xx_greeting", PARAM_BOOL, "yes", 0, 0, &var_smtp_skip_5xx_greeting,
     "Try the next MX host after a 5xx greeting."},
    {"smtp_starttls_timeout", PARAM_TIME, "300s", 1, 0, &var_smtp_starttls_timeout,
     "SMTP client time limit for the TLS handshake."},
    {"smtp_tcp_port", PARAM_STR, "smtp", 0, 0, &var_smtp_tcp_port,
     "Default TCP port of the SMTP client."},
    {"smtp_tls_CAfile", PARAM_STR, "", 0, 0, &var_smtp_tls_CAfile,
     "File of trusted CA certificates for the SMTP client."},
    {"smtp_tls_CApath", PARAM_STR, "", 0, 0, &var_smtp_tls_CApath,
     "Directory of trusted CA certificates for the SMTP client."},
    {"smtp_tls_cert_file", PARAM_STR, "", 0, 0, &var_smtp_tls_cert_file,
     "SMTP client certificate file."},
    {"smtp_tls_ciphers", PARAM_STR, "medium", 0, 0, &var_smtp_tls_ciphers,
     "Minimum cipher grade for opportunistic TLS in the SMTP client."},
    {"smtp_tls_exclude_ciphers", PARAM_STR, "", 0, 0, &var_smtp_tls_exclude_ciphers,
     "Ciphers the SMTP client never uses, at every TLS security level."},
    {"smtp_tls_key_file", PARAM_STR, "$smtp_tls_cert_file", 0, 0, &var_smtp_tls_key_file,
     "SMTP client private key file."},
    {"smtp_tls_loglevel", PARAM_INT, "0", 0, 4, &var_smtp_tls_loglevel,
     "TLS logging level of the SMTP client."},
    {"smtp_tls_mandatory_ciphers", PARAM_STR, "medium", 0, 0, &var_smtp_tls_mandatory_ciphers,
     "Minimum cipher grade for mandatory TLS in the SMTP client."},
    {"smtp_tls_mandatory_exclude_ciphers", PARAM_STR, "", 0, 0, &var_smtp_tls_mandatory_exclude_ciphers,
     "Additional ciphers the SMTP client never uses with mandatory TLS."},
    {"smtp_tls_mandatory_protocols", PARAM_STR, ">=TLSv1.2", 0, 0, &var_smtp_tls_mandatory_protocols,
     "TLS protocols for mandatory TLS in the SMTP client."},
    {"smtp_tls_note_starttls_offer", PARAM_BOOL, "no", 0, 0, &var_smtp_tls_note_starttls_offer,
     "Log servers that offer STARTTLS when TLS is not on."},
    {"smtp_tls_policy_maps", PARAM_STR, "", 0, 0, &var_smtp_tls_policy_maps,
     "TLS security policy per destination."},
    {"smtp_tls_protocols", PARAM_STR, ">=TLSv1.2", 0, 0, &var_smtp_tls_protocols,
     "TLS protocols for opportunistic TLS in the SMTP client."},
    {"smtp_tls_secure_cert_match", PARAM_STR, "nexthop, dot-nexthop", 0, 0, &var_smtp_tls_secure_cert_match,
     "Certificate name match for the \"secure\" level."},
    {"smtp_tls_security_level", PARAM_STR, "", 0, 0, &var_smtp_tls_security_level,
     "Default TLS security level of the SMTP client: none, may, encrypt, verify, secure."},
    {"smtp_tls_servername", PARAM_STR, "", 0, 0, &var_smtp_tls_servername,
     "SNI name sent by the SMTP client."},
    {"smtp_tls_session_cache_database", PARAM_STR, "", 0, 0, &var_smtp_tls_session_cache_database,
     "SMTP client TLS session cache."},
    {"smtp_tls_session_cache_timeout", PARAM_TIME, "3600s", 0, 0, &var_smtp_tls_session_cache_timeout,
     "Lifetime of SMTP client TLS session cache entries."},
    {"smtp_tls_verify_cert_match", PARAM_STR, "hostname", 0, 0, &var_smtp_tls_verify_cert_match,
     "Certificate name match for the \"verify\" level."},
    {"smtp_tls_wrappermode", PARAM_BOOL, "no", 0, 0, &var_smtp_tls_wrappermode,
     "Use TLS from the first byte (port 465) instead of STARTTLS."},
    {"smtpd_authorized_xclient_hosts", PARAM_STR, "", 0, 0, &var_smtpd_authorized_xclient_hosts,
     "Clients allowed to use XCLIENT."},
    {"smtpd_authorized_xforward_hosts", PARAM_STR, "", 0, 0, &var_smtpd_authorized_xforward_hosts,
     "Clients allowed to use XFORWARD."},
    {"smtpd_banner", PARAM_STR, "$myhostname ESMTP $mail_name", 0, 0, &var_smtpd_banner,
     "Text after the 220 code of the SMTP greeting."},
    {"smtpd_client_auth_rate_limit", PARAM_INT, "0", 0, 0, &var_smtpd_client_auth_rate_limit,
     "AUTH commands per client per anvil_rate_time_unit; 0 means no limit."},
    {"smtpd_client_connection_count_limit", PARAM_INT, "50", 0, 0, &var_smtpd_client_connection_count_limit,
     "Simultaneous connections per client; 0 means no limit."},
    {"smtpd_client_connection_rate_limit", PARAM_INT, "0", 0, 0, &var_smtpd_client_connection_rate_limit,
     "Connections per client per anvil_rate_time_unit; 0 means no limit."},
    {"smtpd_client_event_limit_exceptions", PARAM_STR, "$mynetworks", 0, 0, &var_smtpd_client_event_limit_exceptions,
     "Clients exempt from the connection and rate limits."},
    {"smtpd_client_message_rate_limit", PARAM_INT, "0", 0, 0, &var_smtpd_client_message_rate_limit,
     "Messages per client per anvil_rate_time_unit; 0 means no limit."},
    {"smtpd_client_new_tls_session_rate_limit", PARAM_INT, "0", 0, 0, &var_smtpd_client_new_tls_session_rate_limit,
     "New TLS sessions per client per anvil_rate_time_unit; 0 means no limit."},
    {"smtpd_client_port_logging", PARAM_BOOL, "no", 0, 0, &var_smtpd_client_port_logging,
     "Log the client port with the client address."},
    {"smtpd_client_recipient_rate_limit", PARAM_INT, "0", 0, 0, &var_smtpd_client_recipient_rate_limit,
     "Recipients per client per anvil_rate_time_unit; 0 means no limit."},
    {"smtpd_client_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_client_restrictions,
     "Restrictions applied when a client connects."},
    {"smtpd_command_filter", PARAM_STR, "", 0, 0, &var_smtpd_command_filter,
     "Table that rewrites SMTP commands before they are parsed."},
    {"smtpd_data_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_data_restrictions,
     "Restrictions applied to the DATA command."},
    {"smtpd_delay_open_until_valid_rcpt", PARAM_BOOL, "yes", 0, 0, &var_smtpd_delay_open_until_valid_rcpt,
     "Create the queue file only after the first accepted recipient."},
    {"smtpd_delay_reject", PARAM_BOOL, "yes", 0, 0, &var_smtpd_delay_reject,
     "Apply client, HELO and sender restrictions at RCPT TO."},
    {"smtpd_discard_ehlo_keyword_address_maps", PARAM_STR, "", 0, 0, &var_smtpd_discard_ehlo_keyword_address_maps,
     "EHLO keywords hidden per client address."},
    {"smtpd_discard_ehlo_keywords", PARAM_STR, "", 0, 0, &var_smtpd_discard_ehlo_keywords,
     "EHLO keywords that the SMTP server does not announce."},
    {"smtpd_end_of_data_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_end_of_data_restrictions,
     "Restrictions applied at the end of the message."},
    {"smtpd_error_sleep_time", PARAM_TIME, "1s", 0, 0, &var_smtpd_error_sleep_time,
     "Delay before an error reply once soft_error_limit is reached."},
    {"smtpd_etrn_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_etrn_restrictions,
     "Restrictions applied to the ETRN command."},
    {"smtpd_expansion_filter", PARAM_RAW, "\\t\\40!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~", 0, 0, &var_smtpd_expansion_filter,
     "Characters allowed in $name expansions of RBL reply templates."},
    {"smtpd_forbid_bare_newline", PARAM_STR, "reject", 0, 0, &var_smtpd_forbid_bare_newline,
     "Reject lines that end in a bare LF or CR: reject, normalize or no."},
    {"smtpd_forbid_bare_newline_exclusions", PARAM_STR, "$mynetworks", 0, 0, &var_smtpd_forbid_bare_newline_exclusions,
     "Clients exempt from smtpd_forbid_bare_newline."},
    {"smtpd_forbid_unauth_pipelining", PARAM_BOOL, "yes", 0, 0, &var_smtpd_forbid_unauth_pipelining,
     "Disconnect clients that pipeline commands before being allowed to."},
    {"smtpd_hard_error_limit", PARAM_INT, "20", 1, 0, &var_smtpd_hard_error_limit,
     "Errors after which the SMTP server disconnects."},
    {"smtpd_helo_required", PARAM_BOOL, "no", 0, 0, &var_smtpd_helo_required,
     "Require HELO or EHLO before MAIL FROM."},
    {"smtpd_helo_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_helo_restrictions,
     "Restrictions applied to HELO/EHLO."},
    {"smtpd_history_flush_threshold", PARAM_INT, "100", 0, 0, &var_smtpd_history_flush_threshold,
     "Commands after which the recorded SMTP history is discarded."},
    {"smtpd_junk_command_limit", PARAM_INT, "100", 1, 0, &var_smtpd_junk_command_limit,
     "NOOP, VRFY, ETRN or RSET commands allowed before errors count."},
    {"smtpd_log_access_permit_actions", PARAM_STR, "", 0, 0, &var_smtpd_log_access_permit_actions,
     "Access table PERMIT actions that are logged."},
    {"smtpd_milter_maps", PARAM_STR, "", 0, 0, &var_smtpd_milter_maps,
     "Milters per client address."},
    {"smtpd_milters", PARAM_STR, "", 0, 0, &var_smtpd_milters,
     "Milters for mail that arrives by SMTP."},
    {"smtpd_min_data_rate", PARAM_INT, "500", 1, 0, &var_smtpd_min_data_rate,
     "Bytes per second a client must keep flowing in DATA/BDAT to earn more time."},
    {"smtpd_noop_commands", PARAM_STR, "", 0, 0, &var_smtpd_noop_commands,
     "Commands answered with 250 and otherwise ignored."},
    {"smtpd_null_access_lookup_key", PARAM_STR, "<>", 0, 0, &var_smtpd_null_access_lookup_key,
     "Key used for the null sender in access tables."},
    {"smtpd_peername_lookup", PARAM_BOOL, "yes", 0, 0, &var_smtpd_peername_lookup,
     "Look up the client hostname."},
    {"smtpd_per_record_deadline", PARAM_BOOL, "no", 0, 0, &var_smtpd_per_record_deadline,
     "Apply smtpd_timeout to each record as a deadline."},
    {"smtpd_policy_service_default_action", PARAM_STR, "451 4.3.5 Server configuration problem", 0, 0, &var_smtpd_policy_service_default_action,
     "Action when the policy service is unavailable."},
    {"smtpd_policy_service_max_idle", PARAM_TIME, "300s", 1, 0, &var_smtpd_policy_service_max_idle,
     "How long an idle policy service connection stays open."},
    {"smtpd_policy_service_max_ttl", PARAM_TIME, "1000s", 1, 0, &var_smtpd_policy_service_max_ttl,
     "How long a policy service connection may be reused."},
    {"smtpd_policy_service_policy_context", PARAM_STR, "", 0, 0, &var_smtpd_policy_service_policy_context,
     "Value of the policy_context attribute sent to policy services."},
    {"smtpd_policy_service_request_limit", PARAM_INT, "0", 0, 0, &var_smtpd_policy_service_request_limit,
     "Requests per policy service connection; 0 means no limit."},
    {"smtpd_policy_service_retry_delay", PARAM_TIME, "1s", 1, 0, &var_smtpd_policy_service_retry_delay,
     "Delay before a failed policy service request is retried."},
    {"smtpd_policy_service_timeout", PARAM_TIME, "100s", 1, 0, &var_smtpd_policy_service_timeout,
     "Time limit for one policy service request."},
    {"smtpd_policy_service_try_limit", PARAM_INT, "2", 1, 0, &var_smtpd_policy_service_try_limit,
     "Attempts to reach a policy service."},
    {"smtpd_recipient_limit", PARAM_INT, "1000", 1, 0, &var_smtpd_recipient_limit,
     "Recipients accepted per message."},
    {"smtpd_recipient_overshoot_limit", PARAM_INT, "1000", 1, 0, &var_smtpd_recipient_overshoot_limit,
     "Recipients beyond the limit that count as errors."},
    {"smtpd_recipient_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_recipient_restrictions,
     "Restrictions applied to RCPT TO after smtpd_relay_restrictions."},
    {"smtpd_reject_footer", PARAM_RAW, "", 0, 0, &var_smtpd_reject_footer,
     "Text appended to every 4xx and 5xx reply."},
    {"smtpd_reject_unlisted_recipient", PARAM_BOOL, "yes", 0, 0, &var_smtpd_reject_unlisted_recipient,
     "Reject unknown recipients in local, virtual and relay domains."},
    {"smtpd_reject_unlisted_sender", PARAM_BOOL, "no", 0, 0, &var_smtpd_reject_unlisted_sender,
     "Reject sender addresses in our own domains that are not valid recipients."},
    {"smtpd_relay_restrictions", PARAM_STR, "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination", 0, 0, &var_smtpd_relay_restrictions,
     "Relay control restrictions applied to RCPT TO."},
    {"smtpd_restriction_classes", PARAM_STR, "", 0, 0, &var_smtpd_restriction_classes,
     "Names of user-defined restriction lists."},
    {"smtpd_sasl_auth_enable", PARAM_BOOL, "no", 0, 0, &var_smtpd_sasl_auth_enable,
     "Enable SASL AUTH in the SMTP server."},
    {"smtpd_sasl_authenticated_header", PARAM_BOOL, "no", 0, 0, &var_smtpd_sasl_authenticated_header,
     "Add the SASL login name to the Received: header."},
    {"smtpd_sasl_exceptions_networks", PARAM_STR, "", 0, 0, &var_smtpd_sasl_exceptions_networks,
     "Clients to which AUTH is not offered."},
    {"smtpd_sasl_local_domain", PARAM_STR, "", 0, 0, &var_smtpd_sasl_local_domain,
     "SASL realm of the SMTP server."},
    {"smtpd_sasl_path", PARAM_STR, "smtpd", 0, 0, &var_smtpd_sasl_path,
     "SASL application name or socket path of the SMTP server."},
    {"smtpd_sasl_response_limit", PARAM_INT, "12288", 1, 0, &var_smtpd_sasl_response_limit,
     "Longest SASL response line the SMTP server accepts, in bytes."},
    {"smtpd_sasl_security_options", PARAM_STR, "noanonymous", 0, 0, &var_smtpd_sasl_security_options,
     "SASL security options of the SMTP server."},
    {"smtpd_sasl_service", PARAM_STR, "smtp", 0, 0, &var_smtpd_sasl_service,
     "SASL service name of the SMTP server."},
    {"smtpd_sasl_tls_security_options", PARAM_STR, "$smtpd_sasl_security_options", 0, 0, &var_smtpd_sasl_tls_security_options,
     "SASL security options of the SMTP server over TLS."},
    {"smtpd_sasl_type", PARAM_STR, "cyrus", 0, 0, &var_smtpd_sasl_type,
     "SASL implementation of the SMTP server."},
    {"smtpd_sender_login_maps", PARAM_STR, "", 0, 0, &var_smtpd_sender_login_maps,
     "SASL login names that own each sender address."},
    {"smtpd_sender_restrictions", PARAM_STR, "", 0, 0, &var_smtpd_sender_restrictions,
     "Restrictions applied to MAIL FROM."},
    {"smtpd_soft_error_limit", PARAM_INT, "10", 1, 0, &var_smtpd_soft_error_limit,
     "Errors after which replies are delayed by smtpd_error_sleep_time."},
    {"smtpd_starttls_timeout", PARAM_TIME, "300s", 1, 0, &var_smtpd_starttls_timeout,
     "SMTP server time limit for the TLS handshake."},
    {"smtpd_timeout", PARAM_TIME, "300s", 1, 0, &var_smtpd_timeout,
     "SMTP server time limit for a client request or sending a reply."},
    {"smtpd_tls_CAfile", PARAM_STR, "", 0, 0, &var_smtpd_tls_CAfile,
     "File of trusted CA certificates for client certificates."},
    {"smtpd_tls_CApath", PARAM_STR, "", 0, 0, &var_smtpd_tls_CApath,
     "Directory of trusted CA certificates for client certificates."},
    {"smtpd_tls_ask_ccert", PARAM_BOOL, "no", 0, 0, &var_smtpd_tls_ask_ccert,
     "Ask clients for a certificate."},
    {"smtpd_tls_auth_only", PARAM_BOOL, "no", 0, 0, &var_smtpd_tls_auth_only,
     "Offer AUTH only after STARTTLS."},
    {"smtpd_tls_ccert_verifydepth", PARAM_INT, "9", 1, 0, &var_smtpd_tls_ccert_verifydepth,
     "Verification depth of client certificates."},
    {"smtpd_tls_cert_file", PARAM_STR, "", 0, 0, &var_smtpd_tls_cert_file,
     "SMTP server certificate file (PEM, chain after the certificate)."},
    {"smtpd_tls_chain_files", PARAM_STR, "", 0, 0, &var_smtpd_tls_chain_files,
     "Files with private keys and certificate chains of the SMTP server."},
    {"smtpd_tls_ciphers", PARAM_STR, "medium", 0, 0, &var_smtpd_tls_ciphers,
     "Minimum cipher grade for opportunistic TLS in the SMTP server."},
    {"smtpd_tls_dh1024_param_file", PARAM_STR, "", 0, 0, &var_smtpd_tls_dh1024_param_file,
     "File of DH parameters for the SMTP server."},
    {"smtpd_tls_eecdh_grade", PARAM_STR, "auto", 0, 0, &var_smtpd_tls_eecdh_grade,
     "Elliptic curve grade of the SMTP server."},
    {"smtpd_tls_exclude_ciphers", PARAM_STR, "", 0, 0, &var_smtpd_tls_exclude_ciphers,
     "Ciphers the SMTP server never uses."},
    {"smtpd_tls_key_file", PARAM_STR, "$smtpd_tls_cert_file", 0, 0, &var_smtpd_tls_key_file,
     "SMTP server private key file."},
    {"smtpd_tls_loglevel", PARAM_INT, "0", 0, 4, &var_smtpd_tls_loglevel,
     "TLS logging level of the SMTP server."},
    {"smtpd_tls_mandatory_ciphers", PARAM_STR, "medium", 0, 0, &var_smtpd_tls_mandatory_ciphers,
     "Minimum cipher grade for mandatory TLS in the SMTP server."},
    {"smtpd_tls_mandatory_exclude_ciphers", PARAM_STR, "", 0, 0, &var_smtpd_tls_mandatory_exclude_ciphers,
     "Ciphers the SMTP server also excludes when TLS is required."},
    {"smtpd_tls_mandatory_protocols", PARAM_STR, ">=TLSv1.2", 0, 0, &var_smtpd_tls_mandatory_protocols,
     "TLS protocols for mandatory TLS in the SMTP server."},
    {"smtpd_tls_protocols", PARAM_STR, ">=TLSv1.2", 0, 0, &var_smtpd_tls_protocols,
     "TLS protocols for opportunistic TLS in the SMTP server."},
    {"smtpd_tls_received_header", PARAM_BOOL, "no", 0, 0, &var_smtpd_tls_received_header,
     "Record the TLS protocol and cipher in the Received: header."},
    {"smtpd_tls_req_ccert", PARAM_BOOL, "no", 0, 0, &var_smtpd_tls_req_ccert,
     "Require a client certificate (with smtpd_tls_security_level encrypt)."},
    {"smtpd_tls_security_level", PARAM_STR, "", 0, 0, &var_smtpd_tls_security_level,
     "TLS security level of the SMTP server: none, may, encrypt."},
    {"smtpd_tls_session_cache_database", PARAM_STR, "", 0, 0, &var_smtpd_tls_session_cache_database,
     "SMTP server TLS session cache."},
    {"smtpd_tls_session_cache_timeout", PARAM_TIME, "3600s", 0, 0, &var_smtpd_tls_session_cache_timeout,
     "Lifetime of SMTP server TLS session cache entries."},
    {"smtpd_tls_wrappermode", PARAM_BOOL, "no", 0, 0, &var_smtpd_tls_wrappermode,
     "Use TLS from the first byte (port 465) instead of STARTTLS."},
    {"smtpd_untrusted_strip_headers", PARAM_STR, "", 0, 0, &var_smtpd_untrusted_strip_headers,
     "Headers, or a regexp: table of headers, removed from mail of untrusted clients."},
    {"smtpd_upstream_proxy_protocol", PARAM_STR, "", 0, 0, &var_smtpd_upstream_proxy_protocol,
     "Proxy protocol expected before the SMTP greeting: empty or haproxy."},
    {"smtputf8_enable", PARAM_BOOL, "yes", 0, 0, &var_smtputf8_enable,
     "Support SMTPUTF8."},
    {"soft_bounce", PARAM_BOOL, "no", 0, 0, &var_soft_bounce,
     "Turn hard bounces and 5xx rejects into 4xx (a safety net while testing)."},
    {"stale_lock_time", PARAM_TIME, "500s", 1, 0, &var_stale_lock_time,
     "Age after which a dot-lock file is removed."},
    {"strict_rfc821_envelopes", PARAM_BOOL, "no", 0, 0, &var_strict_rfc821_envelopes,
     "Require RFC 5321 syntax in MAIL FROM and RCPT TO."},
    {"swap_bangpath", PARAM_BOOL, "yes", 0, 0, &var_swap_bangpath,
     "Rewrite \"site!user\" into \"user@site\"."},
    {"syslog_facility", PARAM_STR, "mail", 0, 0, &var_syslog_facility,
     "Syslog facility of the log."},
    {"syslog_name", PARAM_STR, "petrel", 0, 0, &var_syslog_name,
     "Prefix of log lines (petrel/smtpd)."},
    {"trace_service_name", PARAM_STR, "trace", 0, 0, &var_trace_service_name,
     "Name of the trace service in master.cf."},
    {"transport_maps", PARAM_STR, "", 0, 0, &var_transport_maps,
     "Lookup tables that map recipients to transport:nexthop."},
    {"transport_retry_time", PARAM_TIME, "60s", 1, 0, &var_transport_retry_time,
     "How often the queue manager retries a failed transport."},
    {"trigger_timeout", PARAM_TIME, "10s", 1, 0, &var_trigger_timeout,
     "Time limit for sending a wakeup to a service."},
    {"undisclosed_recipients_header", PARAM_STR, "", 0, 0, &var_undisclosed_recipients_header,
     "Header added when a message has no recipient headers."},
    {"unknown_address_reject_code", PARAM_INT, "450", 400, 599, &var_unknown_address_reject_code,
     "SMTP reply code for unresolvable sender or recipient domains."},
    {"unknown_client_reject_code", PARAM_INT, "450", 400, 599, &var_unknown_client_reject_code,
     "SMTP reply code for clients without a hostname."},
    {"unknown_hostname_reject_code", PARAM_INT, "450", 400, 599, &var_unknown_hostname_reject_code,
     "SMTP reply code for HELO hostnames without an address."},
    {"unknown_local_recipient_reject_code", PARAM_INT, "550", 400, 599, &var_unknown_local_recipient_reject_code,
     "SMTP reply code for unknown local recipients."},
    {"unknown_relay_recipient_reject_code", PARAM_INT, "550", 400, 599, &var_unknown_relay_recipient_reject_code,
     "SMTP reply code for unknown relay recipients."},
    {"unknown_virtual_alias_reject_code", PARAM_INT, "550", 400, 599, &var_unknown_virtual_alias_reject_code,
     "SMTP reply code for unknown virtual alias recipients."},
    {"unknown_virtual_mailbox_reject_code", PARAM_INT, "550", 400, 599, &var_unknown_virtual_mailbox_reject_code,
     "SMTP reply code for unknown virtual mailbox recipients."},
    {"virtual_alias_address_length_limit", PARAM_INT, "1000", 1, 0, &var_virtual_alias_address_length_limit,
     "Maximum length of an address produced by virtual alias expansion."},
    {"virtual_alias_domains", PARAM_STR, "$virtual_alias_maps", 0, 0, &var_virtual_alias_domains,
     "Domains whose every address is a virtual alias."},
    {"virtual_alias_expansion_limit", PARAM_INT, "1000", 1, 0, &var_virtual_alias_expansion_limit,
     "Maximum number of addresses from one virtual alias expansion."},
    {"virtual_alias_maps", PARAM_STR, "", 0, 0, &var_virtual_alias_maps,
     "Virtual alias tables for any domain."},
    {"virtual_alias_recursion_limit", PARAM_INT, "1000", 1, 0, &var_virtual_alias_recursion_limit,
     "Maximum nesting of virtual alias expansion."},
    {"virtual_gid_maps", PARAM_STR, "", 0, 0, &var_virtual_gid_maps,
     "Group ID of each virtual mailbox."},
    {"virtual_mailbox_base", PARAM_STR, "", 0, 0, &var_virtual_mailbox_base,
     "Directory prepended to virtual_mailbox_maps results."},
    {"virtual_mailbox_domains", PARAM_STR, "$virtual_mailbox_maps", 0, 0, &var_virtual_mailbox_domains,
     "Domains delivered to virtual mailboxes."},
    {"virtual_mailbox_limit", PARAM_INT, "51200000", 0, 0, &var_virtual_mailbox_limit,
     "Maximum size of a virtual mailbox or maildir file; 0 means no limit."},
    {"virtual_mailbox_lock", PARAM_STR, "fcntl, dotlock", 0, 0, &var_virtual_mailbox_lock,
     "Locks used for virtual mbox files."},
    {"virtual_mailbox_maps", PARAM_STR, "", 0, 0, &var_virtual_mailbox_maps,
     "Mailbox path of each virtual recipient."},
    {"virtual_minimum_uid", PARAM_INT, "100", 1, 0, &var_virtual_minimum_uid,
     "Lowest uid that virtual delivery accepts."},
    {"virtual_transport", PARAM_STR, "virtual", 0, 0, &var_virtual_transport,
     "Transport for virtual_mailbox_domains."},
    {"virtual_uid_maps", PARAM_STR, "", 0, 0, &var_virtual_uid_maps,
     "User ID of each virtual mailbox."},
    {"*_delivery_slot_cost", PARAM_INT, "$default_delivery_slot_cost", 0, 0, NULL,
     "Per-transport delivery_slot_cost."},
    {"*_destination_concurrency_failed_cohort_limit", PARAM_INT, "$default_destination_concurrency_failed_cohort_limit", 0, 0, NULL,
     "Per-transport destination_concurrency_failed_cohort_limit."},
    {"*_destination_concurrency_limit", PARAM_INT, "$default_destination_concurrency_limit", 0, 0, NULL,
     "Per-transport limit on parallel deliveries to one destination."},
    {"*_destination_rate_delay", PARAM_TIME, "$default_destination_rate_delay", 0, 0, NULL,
     "Per-transport delay between deliveries to one destination."},
    {"*_destination_recipient_limit", PARAM_INT, "$default_destination_recipient_limit", 0, 0, NULL,
     "Per-transport maximum recipients per delivery."},
    {"*_initial_destination_concurrency", PARAM_INT, "$initial_destination_concurrency", 0, 0, NULL,
     "Per-transport initial concurrency."},
    {"*_time_limit", PARAM_TIME, "$command_time_limit", 0, 0, NULL,
     "Per-transport time limit for one delivery."},
    {NULL, PARAM_STR, NULL, 0, 0, NULL, NULL},
};

/* The system's host name, made fully qualified through the resolver if it is not. */
static const char *params_system_hostname(void)
{
    static char name[256];
    struct addrinfo hints, *res = NULL;

    if (name[0])
        return name;
    if (gethostname(name, sizeof(name) - 1) < 0 || name[0] == '\0')
        snprintf(name, sizeof(name), "localhost");
    name[sizeof(name) - 1] = '\0';
    if (strchr(name, '.') == NULL) {
        memset(&hints, 0, sizeof(hints));
        hints.ai_flags = AI_CANONNAME;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(name, NULL, &hints, &res) == 0 && res && res->ai_canonname
            && strchr(res->ai_canonname, '.') && strlen(res->ai_canonname) < sizeof(name))
            snprintf(name, sizeof(name), "%s", res->ai_canonname);
        if (res)
            freeaddrinfo(res);
    }
    /* A bare name is no valid HELO name: give it a domain, as Postfix does. */
    if (strchr(name, '.') == NULL && strlen(name) + sizeof(".localdomain") <= sizeof(name))
        strcat(name, ".localdomain");
    return name;
}

static char *params_domain_of(const char *host)
{
    const char *dot = host ? strchr(host, '.') : NULL;

    return xstrdup(dot && dot[1] ? dot + 1 : "localdomain");
}

/* Appends addr/bits unless the list has it already (loopback is always present). */
static void params_add_net(struct strbuf *out, int family, const void *addr, int bits)
{
    char buf[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN + 8];

    if (inet_ntop(family, addr, buf, sizeof(buf)) == NULL)
        return;
    snprintf(net, sizeof(net), family == AF_INET6 ? "[%s]/%d" : "%s/%d", buf, bits);
    if (strstr(out->data, net) == NULL)
        strbuf_printf(out, " %s", net);
}

static int params_mask_bits(const unsigned char *mask, size_t len)
{
    int bits = 0;
    size_t i;

    for (i = 0; i < len; i++)
        bits += __builtin_popcount(mask[i]);
    return bits;
}

static void params_mask(unsigned char *addr, size_t len, int bits)
{
    size_t i;

    for (i = 0; i < len; i++, bits -= 8)
        addr[i] &= bits >= 8 ? 0xff : bits <= 0 ? 0 : (unsigned char) (0xff << (8 - bits));
}

/*
 * mynetworks from mynetworks_style: "host" trusts this machine's own addresses,
 * "subnet" (and "class", which we treat as subnet) the networks of its interfaces.
 * Link-local IPv6 networks are skipped: they need a scope to mean anything.
 */
static char *params_mynetworks(const char *style)
{
    struct strbuf out;
    struct ifaddrs *ifs = NULL, *ifa;
    int host = style == NULL || strcmp(style, "host") == 0;
    char *res;

    strbuf_init(&out, 128, 64 * 1024);
    strbuf_puts(&out, "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128");
    if (getifaddrs(&ifs) == 0) {
        for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
            if (ifa->ifa_addr == NULL)
                continue;
            if (ifa->ifa_addr->sa_family == AF_INET) {
                struct in_addr a = ((struct sockaddr_in *) ifa->ifa_addr)->sin_addr;
                int bits = 32;

                if ((ntohl(a.s_addr) >> 24) == 127)
                    continue;
                if (!host && ifa->ifa_netmask)
                    bits = params_mask_bits((unsigned char *) &((struct sockaddr_in *) ifa->ifa_netmask)->sin_addr, 4);
                params_mask((unsigned char *) &a, 4, bits);
                params_add_net(&out, AF_INET, &a, bits);
            } else if (ifa->ifa_addr->sa_family == AF_INET6) {
                struct in6_addr a = ((struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr;
                int bits = 128;

                if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_LOOPBACK(&a))
                    continue;
                if (!host && ifa->ifa_netmask)
                    bits = params_mask_bits(((struct sockaddr_in6 *) ifa->ifa_netmask)->sin6_addr.s6_addr, 16);
                params_mask(a.s6_addr, 16, bits);
                params_add_net(&out, AF_INET6, &a, bits);
            }
        }
        freeifaddrs(ifs);
    }
    res = strbuf_steal(&out);
    strbuf_release(&out);
    return res;
}

char *params_computed_default(const char *name, const char *(*lookup)(const char *name))
{
    static const struct {
        const char *name, *value;
    } fixed[] = {
        {"command_directory", DEF_COMMAND_DIR},
        {"daemon_directory", DEF_DAEMON_DIR},
        {"data_directory", DEF_DATA_DIR},
        {"mail_version", PACKAGE_VERSION},
        {"mailq_path", DEF_MAILQ_PATH},
        {"newaliases_path", DEF_NEWALIASES_PATH},
        {"queue_directory", DEF_QUEUE_DIR},
        {"sendmail_path", DEF_SENDMAIL_PATH},
    };
    size_t i;

    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(fixed[i].name, name) == 0)
            return xstrdup(fixed[i].value);
    if (strcmp(name, "config_directory") == 0)
        return xstrdup(config_dir());
    if (strcmp(name, "myhostname") == 0)
        return xstrdup(params_system_hostname());
    if (strcmp(name, "mydomain") == 0) {
        const char *host = lookup ? lookup("myhostname") : NULL;

        return params_domain_of(host ? host : params_system_hostname());
    }
    if (strcmp(name, "mynetworks") == 0)
        return params_mynetworks(lookup ? lookup("mynetworks_style") : NULL);
    return NULL;
}
