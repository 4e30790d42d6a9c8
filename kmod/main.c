// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * khttpd: a tiny HTTP server inside the kernel.
 *
 * Module parameters (all read-only once loaded):
 *   port        TCP port to listen on (8081)
 *   backlog     listen backlog (100)
 *   mode        "kthread": one kthread per connection, or
 *               "cmwq": one work item per connection on a workqueue (default)
 *   wq_flags    cmwq only: comma-separated "unbound" (default) | "bound",
 *               plus "highpri" and/or "cpu_intensive" (bound only)
 *   max_active  cmwq only: alloc_workqueue()'s max_active (0 = default)
 *
 * /sys/kernel/debug/khttpd/conns (debugfs, read-only): "live N" (connections
 * on the live list now) and "served N" (accepted since load), for tests.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/tcp.h>
#include <linux/workqueue.h>
#include <net/sock.h>

#include "http_server.h"

#define DEFAULT_PORT 8081
#define DEFAULT_BACKLOG 100
#define LISTEN_RCVBUF (1024 * 1024)

static ushort port = DEFAULT_PORT;
module_param(port, ushort, 0444);
MODULE_PARM_DESC(port, "TCP port to listen on (default 8081)");

static ushort backlog = DEFAULT_BACKLOG;
module_param(backlog, ushort, 0444);
MODULE_PARM_DESC(backlog, "listen backlog (default 100)");

static char *mode = "cmwq";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "kthread | cmwq (default cmwq)");

static char *wq_flags = "unbound";
module_param(wq_flags, charp, 0444);
MODULE_PARM_DESC(wq_flags,
		 "cmwq: unbound (default) | bound, plus highpri, cpu_intensive; comma-separated");

static int max_active;
module_param(max_active, int, 0444);
MODULE_PARM_DESC(max_active, "cmwq: max_active of the workqueue (0 = default)");

static struct socket *listen_socket;
static struct workqueue_struct *khttpd_wq;
static struct task_struct *http_server;
static struct http_server_param param;
static struct dentry *debug_dir;

/* read under the lock, so the figure is one the list really had */
static int conns_show(struct seq_file *m, void *unused)
{
	unsigned int live;

	mutex_lock(&param.lock);
	live = param.nr_conns;
	mutex_unlock(&param.lock);
	seq_printf(m, "live %u\nserved %lld\n", live,
		   (long long)atomic64_read(&param.served));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(conns);

static int parse_mode(const char *s, enum http_server_mode *res)
{
	if (sysfs_streq(s, "kthread")) {
		*res = HTTP_MODE_KTHREAD;
		return 0;
	}
	if (sysfs_streq(s, "cmwq")) {
		*res = HTTP_MODE_CMWQ;
		return 0;
	}
	pr_err("mode=%s: expected kthread or cmwq\n", s);
	return -EINVAL;
}

static int parse_wq_flags(const char *s, unsigned int *res)
{
	char buf[64];
	char *cur = buf;
	char *tok;
	bool unbound = false;
	unsigned int flags = 0;
	int n = 0;

	if (strscpy(buf, s, sizeof(buf)) < 0)
		goto invalid;
	while ((tok = strsep(&cur, ",")) != NULL) {
		if (sysfs_streq(tok, "unbound"))
			unbound = true;
		else if (sysfs_streq(tok, "bound"))
			unbound = false;
		else if (sysfs_streq(tok, "highpri"))
			flags |= WQ_HIGHPRI;
		else if (sysfs_streq(tok, "cpu_intensive"))
			flags |= WQ_CPU_INTENSIVE;
		else
			goto invalid;
		n++;
	}
	if (!n)
		goto invalid;
	/* workqueue.rst: WQ_CPU_INTENSIVE "is meaningless for unbound wq" */
	if (unbound && (flags & WQ_CPU_INTENSIVE)) {
		pr_err("wq_flags=%s: cpu_intensive applies to bound (per-CPU) workqueues only\n",
		       s);
		return -EINVAL;
	}
	*res = flags | (unbound ? WQ_UNBOUND : 0);
	return 0;

invalid:
	pr_err("wq_flags=%s: expected unbound|bound[,highpri][,cpu_intensive]\n",
	       s);
	return -EINVAL;
}

static int open_listen_socket(ushort port, ushort backlog, struct socket **res)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_ANY),
		.sin_port = htons(port),
	};
	struct socket *sock;
	int err;

	err = sock_create_kern(&init_net, PF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &sock);
	if (err < 0) {
		pr_err("sock_create_kern() failure, err=%d\n", err);
		return err;
	}

	sock_set_reuseaddr(sock->sk);
	tcp_sock_set_nodelay(sock->sk);
	tcp_sock_set_cork(sock->sk, false);
	sock_set_rcvbuf(sock->sk, LISTEN_RCVBUF);

	err = kernel_bind(sock, (struct sockaddr *)&addr, sizeof(addr));
	if (err < 0) {
		pr_err("kernel_bind() failure on port %u, err=%d\n", port, err);
		goto err_release;
	}

	err = kernel_listen(sock, backlog);
	if (err < 0) {
		pr_err("kernel_listen() failure, err=%d\n", err);
		goto err_release;
	}

	*res = sock;
	return 0;

err_release:
	sock_release(sock);
	return err;
}

static int __init khttpd_init(void)
{
	enum http_server_mode server_mode;
	unsigned int flags = 0;
	int err;

	/* every parameter is checked in every mode: a typo is a typo */
	err = parse_mode(mode, &server_mode);
	if (err)
		return err;
	err = parse_wq_flags(wq_flags, &flags);
	if (err)
		return err;
	if (max_active < 0 || max_active > WQ_MAX_ACTIVE) {
		pr_err("max_active=%d: expected 0..%d\n", max_active,
		       WQ_MAX_ACTIVE);
		return -EINVAL;
	}
	if (!port) {
		pr_err("port=0: expected 1..65535\n");
		return -EINVAL;
	}

	err = open_listen_socket(port, backlog, &listen_socket);
	if (err < 0)
		return err;

	err = http_server_cache_create();
	if (err) {
		pr_err("kmem_cache_create() failure\n");
		goto err_close_socket;
	}

	if (server_mode == HTTP_MODE_CMWQ) {
		khttpd_wq = alloc_workqueue(KBUILD_MODNAME, flags, max_active);
		if (!khttpd_wq) {
			pr_err("alloc_workqueue() failure\n");
			err = -ENOMEM;
			goto err_destroy_cache;
		}
	}

	http_server_init_param(&param, listen_socket, server_mode, khttpd_wq);

	http_server = kthread_create(http_server_daemon, &param, KBUILD_MODNAME);
	if (IS_ERR(http_server)) {
		err = PTR_ERR(http_server);
		pr_err("can't start the server daemon, err=%d\n", err);
		goto err_destroy_wq;
	}
	/* keep the task_struct valid for kthread_stop() even if it exits */
	get_task_struct(http_server);
	wake_up_process(http_server);

	/* no error check: debugfs is optional, the server works without it */
	debug_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("conns", 0444, debug_dir, NULL, &conns_fops);

	if (server_mode == HTTP_MODE_CMWQ)
		pr_info("listening on port %u, mode cmwq (wq_flags=%s max_active=%d)\n",
			port, wq_flags, max_active);
	else
		pr_info("listening on port %u, mode kthread\n", port);
	return 0;

err_destroy_wq:
	if (khttpd_wq)
		destroy_workqueue(khttpd_wq);
	khttpd_wq = NULL;
err_destroy_cache:
	http_server_cache_destroy();
err_close_socket:
	sock_release(listen_socket);
	listen_socket = NULL;
	return err;
}

static void __exit khttpd_exit(void)
{
	debugfs_remove_recursive(debug_dir);	/* waits for readers of conns */
	WRITE_ONCE(param.stopping, true);
	/*
	 * Shutting the listen socket down wakes the daemon out of
	 * kernel_accept(), and every later accept fails at once.
	 */
	kernel_sock_shutdown(listen_socket, SHUT_RDWR);
	kthread_stop(http_server);
	put_task_struct(http_server);

	/* no new connection from here on: end the live ones */
	http_server_drain(&param);
	if (khttpd_wq)
		destroy_workqueue(khttpd_wq);
	/* every connection and buffer is freed by now, or dmesg says so */
	http_server_cache_destroy();
	sock_release(listen_socket);
	pr_info("unloaded after %lld connection(s)\n",
		(long long)atomic64_read(&param.served));
}

module_init(khttpd_init);
module_exit(khttpd_exit);

MODULE_LICENSE("Dual MIT/GPL");
MODULE_AUTHOR("khttpd-book");
MODULE_DESCRIPTION("in-kernel HTTP daemon: one kthread or one CMWQ work item per connection");
MODULE_VERSION("0.2");
