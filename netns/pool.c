/* netns/pool.c — the in-process pool of ready namespaces and its refill thread.
 *
 * One mutex guards two lists: `ready` (configured namespaces, popped by acquire in O(1)) and `dead`
 * (released ones, waiting to be destroyed). The refill thread destroys what is dead first (that
 * frees bridge addresses and the kernel's memory), trims to the target size, then creates until the
 * pool is full; creation and destruction run outside the lock, so acquire never waits behind them.
 * Creation happens on the refill thread itself (see netns.h: unshare is per thread), with every
 * signal blocked there so the host's signal handling is unaffected. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "netns/nl.h"

struct em_netns_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;         /* the refill thread waits on it */
	pthread_cond_t changed;      /* em_netns_pool_wait waits on it */
	struct em_netns *ready, *dead;
	unsigned n_ready, n_dead, target;
	unsigned outstanding;        /* acquired, not yet released */
	bool stop, thread_started;
	bool orphaned;               /* destroyed while namespaces were out: the last release frees */
	pthread_t thread;
	struct em_netns_bridge *br;  /* NULL in mode NONE */
	struct em_netns_pool_stats st;
	int last_ret;                /* last background failure, with its message */
	struct em_err last_err;
};

static void push(struct em_netns **list, struct em_netns *ns)
{
	ns->next = *list;
	*list = ns;
}

static struct em_netns *pop(struct em_netns **list)
{
	struct em_netns *ns = *list;

	if (ns) {
		*list = ns->next;
		ns->next = NULL;
	}
	return ns;
}

static void deadline_after(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int create_one(struct em_netns_pool *pool, struct em_netns **out, struct em_err *err)
{
	struct em_netns *ns = malloc(sizeof(*ns));
	int ret;

	if (!ns)
		return em_err_set(err, ENOMEM, "allocate network namespace");
	ret = ns_create_on_this_thread(pool->br, ns, err);
	if (ret < 0) {
		free(ns);
		return ret;
	}
	ns->pool = pool;
	*out = ns;
	return 0;
}

static void *refill_thread(void *p)
{
	struct em_netns_pool *pool = p;
	long backoff_ms = 0;

	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
		if (pool->dead) {
			struct em_netns *list = pool->dead, *ns;
			unsigned n = 0;

			pool->dead = NULL;
			pthread_mutex_unlock(&pool->lock);
			while ((ns = pop(&list))) {
				ns_destroy(ns);
				n++;
			}
			pthread_mutex_lock(&pool->lock);
			pool->n_dead -= n;
			pool->st.destroyed += n;
			pthread_cond_broadcast(&pool->changed);
			continue;
		}
		if (pool->n_ready > pool->target) {
			struct em_netns *ns = pop(&pool->ready);

			pool->n_ready--;
			pthread_mutex_unlock(&pool->lock);
			ns_destroy(ns);
			pthread_mutex_lock(&pool->lock);
			pool->st.destroyed++;
			pthread_cond_broadcast(&pool->changed);
			continue;
		}
		if (pool->n_ready < pool->target && !backoff_ms) {
			struct em_err err = { 0 };
			struct em_netns *ns = NULL;
			int ret;

			pthread_mutex_unlock(&pool->lock);
			ret = create_one(pool, &ns, &err);
			pthread_mutex_lock(&pool->lock);
			if (ret < 0) {
				pool->st.failures++;
				pool->last_ret = ret;
				pool->last_err = err;
				backoff_ms = 100;
			} else {
				push(&pool->ready, ns);
				pool->n_ready++;
				pool->st.created++;
			}
			pthread_cond_broadcast(&pool->changed);
			continue;
		}
		if (backoff_ms) {
			/* A failing creation (out of memory, a full subnet) is retried slowly rather
			 * than in a loop that burns a core; releases and stop still wake us. */
			struct timespec ts;

			deadline_after(&ts, backoff_ms);
			if (pthread_cond_timedwait(&pool->work, &pool->lock, &ts) == ETIMEDOUT)
				backoff_ms = 0;
			else if (backoff_ms < 5000)
				backoff_ms *= 2;
			continue;
		}
		pthread_cond_wait(&pool->work, &pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

int em_netns_pool_new(const struct em_netns_pool_cfg *cfg, struct em_netns_pool **out,
		      struct em_err *err)
{
	struct em_netns_pool *pool;
	pthread_condattr_t ca;
	sigset_t all, old;
	int ret;

	if (cfg->mode != EM_NETNS_NONE && cfg->mode != EM_NETNS_BRIDGE)
		return em_err_msg(err, EINVAL, "network namespace pool: mode must be none or bridge");
	if (cfg->mode == EM_NETNS_BRIDGE && !cfg->bridge)
		return em_err_msg(err, EINVAL, "network namespace pool: bridge mode without a bridge");
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return em_err_set(err, ENOMEM, "allocate network namespace pool");
	pthread_mutex_init(&pool->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->work, &ca);
	pthread_cond_init(&pool->changed, &ca);
	pthread_condattr_destroy(&ca);
	pool->target = cfg->size ? cfg->size : 8;
	pool->br = cfg->mode == EM_NETNS_BRIDGE ? cfg->bridge : NULL;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&pool->thread, NULL, refill_thread, pool);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		em_netns_pool_destroy(pool);
		return em_err_set(err, ret, "start network namespace refill thread");
	}
	pool->thread_started = true;
	*out = pool;
	return 0;
}

int em_netns_pool_acquire(struct em_netns_pool *pool, struct em_netns **out, struct em_err *err)
{
	struct em_netns *ns;
	int ret;

	pthread_mutex_lock(&pool->lock);
	ns = pop(&pool->ready);
	if (ns) {
		pool->n_ready--;
		pool->st.hits++;
		pool->outstanding++;
		pthread_mutex_unlock(&pool->lock);
		/* Signalled after unlocking: the woken refill thread must not preempt us only to
		 * block on the mutex we still hold. */
		pthread_cond_signal(&pool->work);
		*out = ns;
		return 0;
	}
	pool->st.misses++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);

	/* Empty: create on the caller's thread rather than wait for the refill thread, which may be
	 * busy destroying; the miss is in the stats. */
	ret = create_one(pool, &ns, err);
	if (ret < 0) {
		em_err_prefix(err, "network namespace pool empty");
		return ret;
	}
	pthread_mutex_lock(&pool->lock);
	pool->st.created++;
	pool->outstanding++;
	pthread_mutex_unlock(&pool->lock);
	*out = ns;
	return 0;
}

static void pool_free(struct em_netns_pool *pool)
{
	pthread_cond_destroy(&pool->work);
	pthread_cond_destroy(&pool->changed);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

void pool_release(struct em_netns_pool *pool, struct em_netns *ns)
{
	bool last;

	pthread_mutex_lock(&pool->lock);
	pool->outstanding--;
	if (!pool->orphaned) {
		push(&pool->dead, ns);
		pool->n_dead++;
		pthread_cond_signal(&pool->work);
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	/* The pool is gone (no thread): destroy here; the last namespace out frees the pool. */
	last = pool->outstanding == 0;
	pthread_mutex_unlock(&pool->lock);
	ns_destroy(ns);
	if (last)
		pool_free(pool);
}

int em_netns_pool_wait(struct em_netns_pool *pool, unsigned ready, int timeout_ms,
		       struct em_err *err)
{
	struct timespec ts;
	int ret = 0;

	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&pool->lock);
	while (pool->n_ready < ready || pool->n_dead) {
		if (pthread_cond_timedwait(&pool->changed, &pool->lock, &ts) == ETIMEDOUT) {
			if (pool->last_ret) {
				if (err)
					*err = pool->last_err;
				em_err_prefix(err, "refill network namespace pool");
				ret = pool->last_ret;
			} else {
				ret = em_err_msg(err, ETIMEDOUT,
						 "network namespace pool: %u of %u ready after %d ms",
						 pool->n_ready, ready, timeout_ms);
			}
			break;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

void em_netns_pool_stats(struct em_netns_pool *pool, struct em_netns_pool_stats *out)
{
	pthread_mutex_lock(&pool->lock);
	*out = pool->st;
	out->ready = pool->n_ready;
	out->pending_destroy = pool->n_dead;
	pthread_mutex_unlock(&pool->lock);
}

void em_netns_pool_resize(struct em_netns_pool *pool, unsigned size)
{
	pthread_mutex_lock(&pool->lock);
	pool->target = size;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

void em_netns_pool_destroy(struct em_netns_pool *pool)
{
	struct em_netns *ns;
	bool orphan;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	if (pool->thread_started)
		pthread_join(pool->thread, NULL);
	while ((ns = pop(&pool->dead)))
		ns_destroy(ns);
	while ((ns = pop(&pool->ready)))
		ns_destroy(ns);
	pthread_mutex_lock(&pool->lock);
	orphan = pool->outstanding > 0;
	pool->orphaned = orphan;
	pthread_mutex_unlock(&pool->lock);
	if (!orphan)
		pool_free(pool);
}
