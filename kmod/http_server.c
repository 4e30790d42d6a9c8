// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * khttpd's server side: the accept loop (the "khttpd" daemon kthread) and
 * the per-connection worker, run either by a kthread of its own or as a
 * work item on a concurrency-managed workqueue.
 *
 * Lifetime of a connection (struct http_conn):
 *   daemon: kernel_accept -> allocate from khttpd_conn -> add to the live
 *           list -> start worker
 *   worker: allocate a receive buffer from khttpd_buf -> recv/parse/respond
 *           until close -> free the buffer -> remove from the live list ->
 *           sock_release -> free the connection   (each step exactly once)
 *   module exit: stop the daemon, shut down every socket still on the live
 *           list (wakes blocked recv), wait for every worker to finish,
 *           then destroy both caches.
 *
 * Both structures come from caches of their own, not from kmalloc, so that a
 * leak shows: kmem_cache_destroy() at unload finds the objects left behind
 * and says so in dmesg ("Slab cache still has objects", and with slub_debug
 * "Objects remaining in khttpd_buf on __kmem_cache_shutdown()" with the
 * function that allocated each object), which the VM test looks for.  A
 * kmalloc'ed object that is never freed stays silent.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/stringify.h>
#include <net/sock.h>

#include "http_parser.h"
#include "http_server.h"

#define RECV_BUFFER_SIZE 4096
#define URL_COPY_SIZE 128	/* the URL is kept (truncated) for the log only */

#define CRLF "\r\n"

/*
 * Fault injection, for kmod/fault-check.sh only: `make FAULT=name` builds a
 * module the VM test must fail (the names and what each breaks are listed in
 * fault-check.sh).  Ordinary builds define nothing.
 */
#define KHTTPD_FAULT_BYTES 1
#define KHTTPD_FAULT_LEAK 2
#define KHTTPD_FAULT_OOPS 3
#define KHTTPD_FAULT_ALLOC 4
#define KHTTPD_FAULT_DOUBLE 5
#define KHTTPD_FAULT_UNLOCKED 6
/*
 * KHTTPD_FAULT_UNLOCKED: workers unlink their connection without srv->lock,
 * as the seed's list (which has no lock) would be once workers unlink their
 * own entries.  The guest kernel (Debian's 6.1) has no lockdep, so
 * lockdep_assert_held() checks nothing, and no KASAN; what it has is
 * CONFIG_DEBUG_LIST with BUG_ON_DATA_CORRUPTION, list poisoning, and, in the
 * VM test, slub_debug's poisoning of freed objects.  The race with the
 * daemon's list_add_tail() is real but a few instructions wide; the one
 * with the drain's walk is widened under this fault (http_server_drain()
 * sleeps after each shutdown), so the walk reads the next pointer of an
 * entry the woken worker has already unlinked and freed (0x6b6b... with
 * slub_debug, LIST_POISON1 without) and takes a general protection fault
 * in every run, instead of once in many.
 */
#ifndef KHTTPD_FAULT
#define KHTTPD_FAULT 0
#elif KHTTPD_FAULT == 0
/* an unknown name expands to an undefined identifier, which #if reads as 0 */
#error "unknown FAULT name: see kmod/fault-check.sh"
#endif

#define BODY_200 "Hello World!"
#define BODY_200_LEN 12
#define BODY_400 "400 Bad Request"
#define BODY_400_LEN 15
#define BODY_501 "501 Not Implemented"
#define BODY_501_LEN 19

#define RESPONSE(status, conn, body, len)				\
	"HTTP/1.1 " status CRLF						\
	"Server: " KBUILD_MODNAME CRLF					\
	"Content-Type: text/plain" CRLF					\
	"Content-Length: " __stringify(len) CRLF			\
	"Connection: " conn CRLF					\
	CRLF								\
	body

/* the Content-Length figures above are checked against the bodies */
static_assert(sizeof(BODY_200) - 1 == BODY_200_LEN);
static_assert(sizeof(BODY_400) - 1 == BODY_400_LEN);
static_assert(sizeof(BODY_501) - 1 == BODY_501_LEN);

static const char response_200_close[] =
	RESPONSE("200 OK", "Close", BODY_200, BODY_200_LEN);
static const char response_200_keep_alive[] =
	RESPONSE("200 OK", "Keep-Alive", BODY_200, BODY_200_LEN);
static const char response_501_close[] =
	RESPONSE("501 Not Implemented", "Close", BODY_501, BODY_501_LEN);
static const char response_501_keep_alive[] =
	RESPONSE("501 Not Implemented", "Keep-Alive", BODY_501, BODY_501_LEN);
/* HEAD: the 200's head alone (RFC 9110 9.3.2); upstream answers it 501 with a body. */
#define HEAD_ONLY(resp)	(sizeof(resp) - 1 - BODY_200_LEN)
static const char response_400_close[] =
	RESPONSE("400 Bad Request", "Close", BODY_400, BODY_400_LEN);

struct http_conn {
	struct socket *sock;
	struct http_server_param *srv;
	struct list_head node;		/* on srv->conns while live */
	struct work_struct work;	/* HTTP_MODE_CMWQ */
};

static struct kmem_cache *http_conn_cache;	/* "khttpd_conn" */
static struct kmem_cache *http_buf_cache;	/* "khttpd_buf", RECV_BUFFER_SIZE */

struct http_request {
	struct http_conn *conn;
	char url[URL_COPY_SIZE];
	size_t url_copied;		/* bytes in url[], at most URL_COPY_SIZE - 1 */
	size_t url_len;			/* full length of the request-target */
	bool close;			/* the last response closed the connection */
};

static int http_recv(struct socket *sock, char *buf, size_t size)
{
	struct msghdr msg = { };
	struct kvec iov = { .iov_base = buf, .iov_len = size };

	return kernel_recvmsg(sock, &msg, &iov, 1, size, 0);
}

static int http_send(struct socket *sock, const char *buf, size_t size)
{
	/* no SIGPIPE for the worker when the peer has gone */
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	size_t done = 0;

	while (done < size) {
		struct kvec iov = {
			.iov_base = (void *)(buf + done),
			.iov_len = size - done,
		};
		int n = kernel_sendmsg(sock, &msg, &iov, 1, iov.iov_len);

		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		done += n;
	}
	return 0;
}

static int http_on_message_begin(struct http_parser *parser)
{
	struct http_request *req = parser->data;

	req->url[0] = '\0';
	req->url_copied = 0;
	req->url_len = 0;
	return 0;
}

/* may be called several times per URL: copy what still fits, no more */
static int http_on_url(struct http_parser *parser, const char *at, size_t len)
{
	struct http_request *req = parser->data;
	size_t room = sizeof(req->url) - 1 - req->url_copied;
	size_t n = min(len, room);

	memcpy(req->url + req->url_copied, at, n);
	req->url_copied += n;
	req->url[req->url_copied] = '\0';
	req->url_len += len;
	return 0;
}

static int http_on_message_complete(struct http_parser *parser)
{
	struct http_request *req = parser->data;
	struct http_conn *conn = req->conn;
	bool keep_alive = http_should_keep_alive(parser) &&
			  !READ_ONCE(conn->srv->stopping);
	bool chunked = parser->flags & HTTP_F_TRANSFER_ENCODING;
	bool get = parser->method == HTTP_GET && !chunked;
	bool head = parser->method == HTTP_HEAD && !chunked;
	const char *response;
	size_t size;
	int err;

	pr_debug("%s %s%s (%zu bytes)\n", http_method_str(parser->method),
		 req->url, req->url_len > req->url_copied ? "..." : "",
		 req->url_len);

	if (get) {
		response = keep_alive ? response_200_keep_alive :
					response_200_close;
		size = keep_alive ? sizeof(response_200_keep_alive) :
				    sizeof(response_200_close);
	} else if (head) {
		response = keep_alive ? response_200_keep_alive :
					response_200_close;
		/* + 1: the send below leaves out the string's NUL */
		size = 1 + (keep_alive ? HEAD_ONLY(response_200_keep_alive) :
					 HEAD_ONLY(response_200_close));
	} else {
		response = keep_alive ? response_501_keep_alive :
					response_501_close;
		size = keep_alive ? sizeof(response_501_keep_alive) :
				    sizeof(response_501_close);
	}
	err = http_send(conn->sock, response, size - 1);
#if KHTTPD_FAULT == KHTTPD_FAULT_BYTES
	/* upstream's defect: two bytes beyond Content-Length */
	if (!err && get)
		err = http_send(conn->sock, "\r\n", 2);
#endif
	if (err || !keep_alive) {
		req->close = true;
		return 1;	/* stop parsing: the connection ends here */
	}
	return 0;
}

static const struct http_parser_settings http_settings = {
	.on_message_begin = http_on_message_begin,
	.on_url = http_on_url,
	.on_message_complete = http_on_message_complete,
};

/* The body of every worker, whatever runs it. */
static void http_conn_serve(struct http_conn *conn)
{
	struct http_request req = { .conn = conn };
	struct http_parser parser;
	char *buf;

	buf = kmem_cache_alloc(http_buf_cache, GFP_KERNEL);
	if (!buf)
		return;

	http_parser_init(&parser);
	parser.data = &req;
#if KHTTPD_FAULT == KHTTPD_FAULT_OOPS
	{
		static atomic_t served = ATOMIC_INIT(0);

		/* the tenth connection oopses its worker */
		if (atomic_inc_return(&served) == 10)
			BUG();
	}
#endif
	while (!READ_ONCE(conn->srv->stopping)) {
		/* returns -EAGAIN when the receive timeout expires */
		int ret = http_recv(conn->sock, buf, RECV_BUFFER_SIZE);

		if (ret <= 0)
			break;
		http_parser_execute(&parser, &http_settings, buf, ret);
		if (req.close)
			break;
		if (parser.error) {
			pr_debug("bad request: %s\n",
				 http_errno_name(parser.error));
			http_send(conn->sock, response_400_close,
				  sizeof(response_400_close) - 1);
#if KHTTPD_FAULT == KHTTPD_FAULT_ALLOC
			/*
			 * The fault: this error path forgets the receive
			 * buffer.  Nothing goes wrong for the client; only
			 * kmem_cache_destroy() at unload can tell.
			 */
			return;
#endif
			break;
		}
	}
	kmem_cache_free(http_buf_cache, buf);
#if KHTTPD_FAULT == KHTTPD_FAULT_DOUBLE
	/*
	 * The fault, the seed's double release: the worker releases its
	 * socket when the connection ends, and http_conn_close(), the
	 * connection's owner, releases it again (the seed's free_work did the
	 * second release at unload).  The second sock_release() finds the
	 * socket inode already evicted and hits BUG_ON(inode->i_state &
	 * I_CLEAR) in iput() (fs/inode.c in 6.1) while the inode waits for
	 * its RCU grace period; if it was freed already, the release is a
	 * use-after-free with no predictable message, so the VM test relies
	 * on the BUG, which comes every time in practice.
	 */
	sock_release(conn->sock);
#endif
}

/* The end of every connection: unlink, release and free, once. */
static void http_conn_close(struct http_conn *conn)
{
	struct http_server_param *srv = conn->srv;

#if KHTTPD_FAULT == KHTTPD_FAULT_UNLOCKED
	/* the fault: unlink without the lock (see KHTTPD_FAULT_UNLOCKED) */
	list_del(&conn->node);
	srv->nr_conns--;
#else
	mutex_lock(&srv->lock);
	list_del(&conn->node);
	srv->nr_conns--;
	mutex_unlock(&srv->lock);
#endif

	sock_release(conn->sock);
	kmem_cache_free(http_conn_cache, conn);
}

static int http_conn_kthread(void *arg)
{
	struct http_conn *conn = arg;
	struct http_server_param *srv = conn->srv;

	http_conn_serve(conn);
	http_conn_close(conn);
	/*
	 * Signal the exit from core kernel code: after complete() this thread
	 * runs no instruction of the module, so unloading cannot race it.
	 */
	kthread_complete_and_exit(&srv->worker_exited, 0);
}

static void http_conn_work(struct work_struct *work)
{
	struct http_conn *conn = container_of(work, struct http_conn, work);

	http_conn_serve(conn);
	http_conn_close(conn);	/* freeing the running work item is allowed */
}

static void http_conn_set_timeouts(struct socket *sock)
{
	struct sock *sk = sock->sk;

	lock_sock(sk);
	sk->sk_rcvtimeo = HTTP_CONN_TIMEOUT_SEC * HZ;
	sk->sk_sndtimeo = HTTP_CONN_TIMEOUT_SEC * HZ;
	release_sock(sk);
}

/* Collect the exits of finished worker threads (daemon only). */
static void http_server_reap_workers(struct http_server_param *srv)
{
	while (srv->nr_workers && try_wait_for_completion(&srv->worker_exited))
		srv->nr_workers--;
}

/* Hand an accepted socket to a worker; on failure close it. */
static void http_server_dispatch(struct http_server_param *srv,
				 struct socket *sock)
{
	struct http_conn *conn;
	struct task_struct *worker;

	conn = kmem_cache_zalloc(http_conn_cache, GFP_KERNEL);
	if (!conn)
		goto err_release;	/* the allocator has warned already */
	conn->sock = sock;
	conn->srv = srv;
	http_conn_set_timeouts(sock);

	mutex_lock(&srv->lock);
	list_add_tail(&conn->node, &srv->conns);
	srv->nr_conns++;
	mutex_unlock(&srv->lock);
	atomic64_inc(&srv->served);

	if (srv->mode == HTTP_MODE_CMWQ) {
		INIT_WORK(&conn->work, http_conn_work);
		queue_work(srv->wq, &conn->work);
		return;
	}

	worker = kthread_run(http_conn_kthread, conn, KBUILD_MODNAME "-conn");
	if (IS_ERR(worker)) {
		pr_err_ratelimited("can't create a worker thread: %ld\n",
				   PTR_ERR(worker));
		goto err_unlink;
	}
	srv->nr_workers++;
	return;

err_unlink:
	mutex_lock(&srv->lock);
	list_del(&conn->node);
	srv->nr_conns--;
	mutex_unlock(&srv->lock);
	kmem_cache_free(http_conn_cache, conn);
err_release:
	sock_release(sock);
}

int http_server_daemon(void *arg)
{
	struct http_server_param *srv = arg;

	while (!kthread_should_stop()) {
		struct socket *sock;
		int err;

		err = kernel_accept(srv->listen_socket, &sock, 0);
		if (err < 0) {
			/* module exit shut the listen socket down */
			if (READ_ONCE(srv->stopping))
				break;
			pr_err_ratelimited("kernel_accept() error: %d\n", err);
			schedule_timeout_interruptible(HZ / 100);
			continue;
		}
		if (srv->mode == HTTP_MODE_KTHREAD)
			http_server_reap_workers(srv);
		http_server_dispatch(srv, sock);
	}
	return 0;
}

void http_server_init_param(struct http_server_param *param,
			    struct socket *listen_socket,
			    enum http_server_mode mode,
			    struct workqueue_struct *wq)
{
	param->listen_socket = listen_socket;
	param->mode = mode;
	param->wq = wq;
	param->stopping = false;
	mutex_init(&param->lock);
	INIT_LIST_HEAD(&param->conns);
	param->nr_conns = 0;
	init_completion(&param->worker_exited);
	param->nr_workers = 0;
	atomic64_set(&param->served, 0);
}

int http_server_cache_create(void)
{
	/*
	 * Named caches of their own: slub_debug=FZPU,khttpd_* (the VM test's
	 * boot option) applies to them alone, and the debug flags keep them
	 * from being merged with a kmalloc cache of the same size, in which a
	 * leak would hide.
	 */
	http_conn_cache = kmem_cache_create(KBUILD_MODNAME "_conn",
					    sizeof(struct http_conn), 0, 0,
					    NULL);
	if (!http_conn_cache)
		return -ENOMEM;
	http_buf_cache = kmem_cache_create(KBUILD_MODNAME "_buf",
					   RECV_BUFFER_SIZE, 0, 0, NULL);
	if (!http_buf_cache) {
		kmem_cache_destroy(http_conn_cache);
		http_conn_cache = NULL;
		return -ENOMEM;
	}
	return 0;
}

void http_server_cache_destroy(void)
{
	/* complains in dmesg if an object of either cache was never freed */
	kmem_cache_destroy(http_buf_cache);
	kmem_cache_destroy(http_conn_cache);
	http_buf_cache = NULL;
	http_conn_cache = NULL;
}

void http_server_drain(struct http_server_param *param)
{
	struct http_conn *conn;
	unsigned int live = 0;

	/*
	 * A worker unlinks its connection under the lock before releasing
	 * the socket, so every socket seen here is still valid.  Shutting it
	 * down ends a blocked recv() with 0 and makes further sends fail.
	 */
	mutex_lock(&param->lock);
	list_for_each_entry(conn, &param->conns, node) {
		kernel_sock_shutdown(conn->sock, SHUT_RDWR);
		live++;
#if KHTTPD_FAULT == KHTTPD_FAULT_UNLOCKED
		/* widen the race: let the woken worker unlink and free conn */
		msleep(200);
#endif
	}
	mutex_unlock(&param->lock);
	if (live)
		pr_info("shutting down %u live connection(s)\n", live);

#if KHTTPD_FAULT == KHTTPD_FAULT_LEAK
	/* the fault: do not wait, so connections are still live below */
#else
	if (param->mode == HTTP_MODE_KTHREAD) {
		while (param->nr_workers) {
			wait_for_completion(&param->worker_exited);
			param->nr_workers--;
		}
	} else {
		flush_workqueue(param->wq);
	}
#endif

	mutex_lock(&param->lock);
	if (!list_empty(&param->conns))
		pr_err("%u connection(s) left after drain\n", param->nr_conns);
	mutex_unlock(&param->lock);
}
