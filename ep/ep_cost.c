/* The communication cost model of expert parallelism (docs/expert-parallelism.md).
 *
 * Each rank holds T tokens and sends every token-slot whose expert lives elsewhere: with routing
 * uniform over the experts, (R-1)/R of its T*K slots. One slot carries H activation elements, so
 *     bytes per rank, each way = T * K * (R-1)/R * H * elem        (elem: dispatch or combine bytes)
 *     time each way            = (R-1) * latency + imbalance * bytes / link bandwidth
 * (one message per peer, the busiest rank's link sets the pace). Expert compute per rank is
 * imbalance * T*K slots * 6*H*I flops (three GEMMs) at the given rate. No deduplication of a token
 * sent to one rank for two of its experts (what `moebench ep` does; engines such as DeepEP send it
 * once, which lowers the bytes by up to the number of a token's experts on one rank). */
#include "ep.h"

struct moe_ep_cost moe_ep_cost_layer(const struct moe_model_shape *m, int64_t T, int32_t R,
				     const struct moe_ep_cost_params *cp)
{
	struct moe_ep_cost c = { 0 };
	const double slots = (double)T * m->top_k * (R - 1) / R;
	const double bw = cp->link_gbps * 1e9 / 8;
	c.dispatch_bytes = slots * (double)m->hidden * cp->dispatch_elem;
	c.combine_bytes = slots * (double)m->hidden * cp->combine_elem;
	c.dispatch_s = (R - 1) * cp->latency_us * 1e-6 + cp->imbalance * c.dispatch_bytes / bw;
	c.combine_s = (R - 1) * cp->latency_us * 1e-6 + cp->imbalance * c.combine_bytes / bw;
	c.compute_s = cp->imbalance * (double)T * m->top_k * 6.0 * (double)m->hidden * (double)m->inter /
		      (cp->gflops * 1e9);
	return c;
}

void moe_ep_cost_table(FILE *f, const char *model, int64_t T, const struct moe_ep_cost_params *cp)
{
	const char *names[2] = { "deepseek-v3", "command-a-plus" };
	const int nm = model ? 1 : 2;
	static const int32_t ranks[] = { 8, 16, 32, 64 };
	static const double links[] = { 100, 200, 400 };
	fprintf(f, "# expert-parallel cost per layer: T=%lld tokens per rank, dispatch %g B/elem, combine %g B/elem, "
		   "latency %g us per message, imbalance %g, expert compute at %g GFLOP/s per rank\n",
		(long long)T, cp->dispatch_elem, cp->combine_elem, cp->latency_us, cp->imbalance, cp->gflops);
	fprintf(f, "%-15s %5s %6s %14s %14s %12s %12s %12s %10s\n", "model", "ranks", "Gb/s", "dispatch MB", "combine MB",
		"dispatch us", "combine us", "compute us", "comm/comp");
	for (int i = 0; i < nm; i++) {
		const struct moe_model_shape *m = moe_model_find(model ? model : names[i]);
		if (!m)
			continue;
		for (size_t r = 0; r < sizeof ranks / sizeof ranks[0]; r++)
			for (size_t l = 0; l < sizeof links / sizeof links[0]; l++) {
				struct moe_ep_cost_params p = *cp;
				p.link_gbps = links[l];
				const struct moe_ep_cost c = moe_ep_cost_layer(m, T, ranks[r], &p);
				fprintf(f, "%-15s %5d %6.0f %14.2f %14.2f %12.1f %12.1f %12.1f %10.2f\n", m->name, ranks[r],
					links[l], c.dispatch_bytes / 1e6, c.combine_bytes / 1e6, c.dispatch_s * 1e6,
					c.combine_s * 1e6, c.compute_s * 1e6, (c.dispatch_s + c.combine_s) / c.compute_s);
			}
	}
}
