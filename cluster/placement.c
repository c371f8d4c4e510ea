/* Placement rules and start dependencies: see placement.h. */
#include "pvcluster/placement.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(PVSTORE_GUEST_RULES_MAX == PVCLUS_GUEST_RULES_MAX,
	       "a spec's rules must fit the scheduler's slots");

struct pair {
	const char *group;
	bool anti;
	bool soft;
};

static int cmp_pair(const struct pair *x, const struct pair *y)
{
	if (x->anti != y->anti)
		return x->anti ? 1 : -1;
	return strcmp(x->group, y->group);
}

static int cmp_pair_q(const void *a, const void *b)
{
	return cmp_pair(a, b);
}

int placement_rules_derive(const struct pvstore_guest *const *specs, size_t n,
			   struct placement_rule_def *defs, size_t max)
{
	size_t np = 0, nd = 0;
	struct pair *p;

	for (size_t i = 0; i < n; i++) {
		if (!specs[i])
			continue;
		if (specs[i]->n_rules > PVSTORE_GUEST_RULES_MAX)
			return -EINVAL;
		np += specs[i]->n_rules;
	}
	p = calloc(np + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	np = 0;
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0; specs[i] && k < specs[i]->n_rules; k++)
			p[np++] = (struct pair){ specs[i]->rules[k].group, specs[i]->rules[k].anti,
						 specs[i]->rules[k].soft };
	qsort(p, np, sizeof(*p), cmp_pair_q);
	for (size_t i = 0; i < np; i++) {
		if (nd && !cmp_pair(&p[i], &(struct pair){ defs[nd - 1].group, defs[nd - 1].anti, false })) {
			defs[nd - 1].members++;
			defs[nd - 1].hard = defs[nd - 1].hard || !p[i].soft;
			continue;
		}
		if (nd == max) {
			free(p);
			return -ENOSPC;
		}
		struct placement_rule_def *d = &defs[nd++];
		memset(d, 0, sizeof(*d));
		snprintf(d->group, sizeof(d->group), "%s", p[i].group);
		d->anti = p[i].anti;
		d->hard = !p[i].soft;
		d->members = 1;
		d->id = (uint32_t)nd;
	}
	free(p);
	return (int)nd;
}

void placement_rules_to_sched(const struct placement_rule_def *defs, size_t n, struct pvclus_rule *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (struct pvclus_rule){
			.id = defs[i].id,
			.kind = defs[i].anti ? PVCLUS_RULE_ANTI_AFFINITY : PVCLUS_RULE_AFFINITY,
			.hard = defs[i].hard,
		};
}

int placement_rule_ids(const struct placement_rule_def *defs, size_t n,
		       const struct pvstore_guest *spec, uint32_t ids[PVCLUS_GUEST_RULES_MAX])
{
	memset(ids, 0, sizeof(uint32_t) * PVCLUS_GUEST_RULES_MAX);
	if (spec->n_rules > PVCLUS_GUEST_RULES_MAX)
		return -ENOENT;
	for (unsigned k = 0; k < spec->n_rules; k++) {
		struct pair key = { spec->rules[k].group, spec->rules[k].anti, false };
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = cmp_pair(&key, &(struct pair){ defs[mid].group, defs[mid].anti, false });
			if (!c) {
				ids[k] = defs[mid].id;
				break;
			}
			if (c > 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!ids[k])
			return -ENOENT;
	}
	return 0;
}

bool placement_dep_blocks(const struct pvclus_ha_guest *dep)
{
	if (!dep->want_running)
		return false;
	switch (dep->state) {
	case PVCLUS_HA_RUNNING:
	case PVCLUS_HA_MIGRATING:
	case PVCLUS_HA_ERROR:
	case PVCLUS_HA_STOPPED:
		return false;
	default:
		return true;
	}
}

static int cmp_spec_uuid(const void *a, const void *b)
{
	const struct pvstore_guest *x = *(const struct pvstore_guest *const *)a;
	const struct pvstore_guest *y = *(const struct pvstore_guest *const *)b;
	return memcmp(x->uuid, y->uuid, 16);
}

/* The position of uuid in the sorted specs, or n. */
static size_t find_spec(const struct pvstore_guest **s, size_t n, const uint8_t uuid[16])
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(uuid, s[mid]->uuid, 16);
		if (!c)
			return mid;
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n;
}

int placement_deps_cycle(const struct pvstore_guest *const *specs, size_t n,
			 const struct pvstore_guest *spec, uint8_t via[16])
{
	const struct pvstore_guest **s = calloc(n + 1, sizeof(*s));
	size_t *stack = calloc(n + 1, sizeof(*stack));
	bool *seen = calloc(n + 1, sizeof(*seen));
	size_t ns = 0;
	int rc = -ENOMEM;

	if (!s || !stack || !seen)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (specs[i] && memcmp(specs[i]->uuid, spec->uuid, 16))
			s[ns++] = specs[i];
	qsort(s, ns, sizeof(*s), cmp_spec_uuid);
	rc = 0;
	/* From each direct dependency, a depth-first walk: reaching spec is a
	 * cycle. Each spec is entered at most once over all walks, since a spec
	 * already seen either led back (and we stopped) or did not. */
	for (unsigned d = 0; d < spec->n_depends && !rc; d++) {
		size_t top = 0, first = find_spec(s, ns, spec->depends_on[d]);
		if (first == ns || seen[first])
			continue;
		seen[first] = true;
		stack[top++] = first;
		while (top && !rc) {
			const struct pvstore_guest *g = s[stack[--top]];
			for (unsigned k = 0; k < g->n_depends && !rc; k++) {
				if (!memcmp(g->depends_on[k], spec->uuid, 16)) {
					rc = -ELOOP;
					if (via)
						memcpy(via, spec->depends_on[d], 16);
					break;
				}
				size_t j = find_spec(s, ns, g->depends_on[k]);
				if (j < ns && !seen[j]) {
					seen[j] = true;
					stack[top++] = j;
				}
			}
		}
	}
out:
	free(s);
	free(stack);
	free(seen);
	return rc;
}
