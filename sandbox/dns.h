/* Name resolution inside a generation: the text of its own
 * /etc/resolv.conf and /etc/hosts, which its mount namespace shows in
 * place of the host's (as ip-netns(8) does with /etc/netns/NAME/). Pure. */
#pragma once

/* The host's resolv.conf with every nameserver on loopback (127.0.0.0/8,
 * ::1, 0.0.0.0, ::; a local stub such as systemd-resolved's 127.0.0.53 or
 * dnsmasq's 127.0.0.1, which the generation's own loopback does not have)
 * replaced by gateway, the host side of its veth; once, where the first one
 * was. dns, if not NULL, replaces every nameserver. With no nameserver
 * left, the gateway is the nameserver. Other lines stay as they are. */
int dns_resolv_conf(const char *host_text, const char *gateway, char *const *dns, char **ret);

/* localhost, the generation's host name on its own address, then extra
 * entries ("ADDR NAME", from [sandbox] hosts). */
int dns_hosts(const char *hostname, const char *addr, char *const *extra, char **ret);
