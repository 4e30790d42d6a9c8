/* SPDX-License-Identifier: GPL-2.0 OR MIT */
#ifndef KHTTPD_HTTP_SERVER_H
#define KHTTPD_HTTP_SERVER_H

#include <linux/completion.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/net.h>
#include <linux/workqueue.h>

/* How each accepted connection is served. */
enum http_server_mode {
	HTTP_MODE_KTHREAD,	/* one kthread per connection (the course's khttpd) */
	HTTP_MODE_CMWQ,		/* one work item per connection on our workqueue */
};

/*
 * Receive/send timeout of a connection socket: an idle or stuck client
 * loses its connection after this long.
 */
#define HTTP_CONN_TIMEOUT_SEC 10

struct http_server_param {
	struct socket *listen_socket;
	enum http_server_mode mode;
	struct workqueue_struct *wq;	/* HTTP_MODE_CMWQ only */

	/* set once by module exit; read by the daemon and the workers */
	bool stopping;

	/* live connections, each a struct http_conn */
	struct mutex lock;
	struct list_head conns;
	unsigned int nr_conns;		/* under lock */

	/* HTTP_MODE_KTHREAD: each worker thread completes this as it exits */
	struct completion worker_exited;
	unsigned long nr_workers;	/* started, exit not yet collected */

	atomic64_t served;		/* connections accepted, for the log */
};

void http_server_init_param(struct http_server_param *param,
			    struct socket *listen_socket,
			    enum http_server_mode mode,
			    struct workqueue_struct *wq);

/* The accept loop, run by the "khttpd" kthread. */
int http_server_daemon(void *arg);

/*
 * The slab caches of struct http_conn and of the receive buffers: created
 * before the first connection, destroyed after the drain.
 */
int http_server_cache_create(void);
void http_server_cache_destroy(void);

/*
 * After the daemon has stopped: shut every live connection down and wait
 * until each worker has finished and freed its connection.
 */
void http_server_drain(struct http_server_param *param);

#endif /* KHTTPD_HTTP_SERVER_H */
