/* `moebench info`: version, ISA detection, CPU model and hwloc topology summary, and the built-in
 * backends with the ops they provide; --json prints the same as one JSON object. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "commands.h"
#include "moe/moe.h"

static int info_json(void)
{
	struct moe_bench_topo topo;
	char cpu[256];
	moe_bench_topo_get(&topo);
	moe_bench_cpu_model(cpu, sizeof cpu);
	const char *cap = getenv("MOE_MAX_ISA");
	json_t *root = json_object(), *isa = json_object(), *backends = json_array(), *ops = json_object();
	json_object_set_new(root, "version", json_string(MOE_VERSION_STRING));
	json_object_set_new(isa, "hardware", json_string(moe_isa_name(moe_isa_hardware())));
	json_object_set_new(isa, "dispatch", json_string(moe_isa_name(moe_isa_effective())));
	json_object_set_new(isa, "max_isa_env", cap ? json_string(cap) : json_null());
	json_object_set_new(root, "isa", isa);
	json_object_set_new(root, "cpu", json_string(cpu));
	json_object_set_new(root, "topology", json_string(topo.summary));
	json_object_set_new(root, "dispatched", json_string(moe_backend_dispatched()->name));
	for (size_t i = 0; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		json_t *o = json_object(), *bops = json_array();
		json_object_set_new(o, "name", json_string(b->table->name));
		json_object_set_new(o, "needs", json_string(moe_isa_name(b->isa)));
		for (int op = 0; op < MOE_OP_COUNT; op++)
			if (moe_backend_provides(b->table, (enum moe_op)op, NULL))
				json_array_append_new(bops, json_string(moe_op_name((enum moe_op)op)));
		json_object_set_new(o, "ops", bops);
		json_object_set_new(o, "available", json_boolean(b->isa <= moe_isa_hardware()));
		json_array_append_new(backends, o);
	}
	json_object_set_new(root, "backends", backends);
	for (int op = 0; op < MOE_OP_COUNT; op++) {
		json_t *o = json_object(), *vars = json_array();
		json_object_set_new(o, "dispatched",
				    json_string(moe_builtin_pick(moe_isa_effective(), (enum moe_op)op, NULL)->table->name));
		for (size_t i = 0; i < moe_builtin_count(); i++)
			if (moe_builtin_at(i)->op == (enum moe_op)op)
				json_array_append_new(vars, json_string(moe_builtin_at(i)->table->name));
		json_object_set_new(o, "variants", vars);
		json_object_set_new(ops, moe_op_name((enum moe_op)op), o);
	}
	json_object_set_new(root, "ops", ops);
	const int rc = json_dumpf(root, stdout, JSON_INDENT(2)) == 0 && putchar('\n') != EOF ? 0 : 1;
	json_decref(root);
	return rc;
}

int moe_cmd_info(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: moebench info [--json]\n\nPrints the version, the ISA the CPU and OS support, the ISA "
		       "dispatch uses (MOE_MAX_ISA caps it) and every built-in backend with its ops.\n"
		       "  --json   the same as one JSON object on stdout (version, isa, cpu, topology,\n"
		       "           dispatched, backends [{name, needs, ops, available}], ops {op: {dispatched, variants}})\n"
		       "exit status: 0 success, 2 usage error.\n");
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--json"))
		return info_json();
	if (argc > 1) {
		fprintf(stderr, "moebench info: unexpected argument '%s' (see --help)\n", argv[1]);
		return 2;
	}
	const char *cap = getenv("MOE_MAX_ISA");
	printf("moebench %s\n", MOE_VERSION_STRING);
	printf("isa: hardware %s, dispatch %s%s%s%s\n", moe_isa_name(moe_isa_hardware()),
	       moe_isa_name(moe_isa_effective()), cap ? " (MOE_MAX_ISA=" : "", cap ? cap : "", cap ? ")" : "");
	struct moe_bench_topo topo;
	char cpu[256];
	moe_bench_topo_get(&topo);
	moe_bench_cpu_model(cpu, sizeof cpu);
	printf("cpu: %s\ntopology (hwloc): %s\n", cpu, topo.summary);
	printf("dispatched backend: %s\n\nbuilt-in backends:\n", moe_backend_dispatched()->name);
	int width = 4;
	for (size_t i = 0; i < moe_builtin_count(); i++) {
		const int n = (int)strlen(moe_builtin_at(i)->table->name);
		width = n > width ? n : width;
	}
	printf("  %-*s %-11s %s\n", width, "name", "needs", "ops");
	for (size_t i = 0; i < moe_builtin_count(); i++) {
		const struct moe_builtin *b = moe_builtin_at(i);
		printf("  %-*s %-11s", width, b->table->name, moe_isa_name(b->isa));
		for (int op = 0; op < MOE_OP_COUNT; op++)
			if (moe_backend_provides(b->table, (enum moe_op)op, NULL))
				printf(" %s", moe_op_name((enum moe_op)op));
		printf("%s\n", b->isa > moe_isa_hardware() ? "  (ISA unavailable here)" : "");
	}
	/* Per op: the kernel the dispatched table runs first (it falls back, per problem, to the next
	 * variant that accepts the problem and finally to ref) and every variant of the op's list. */
	printf("\nper op: dispatched kernel, then every variant [ISA it needs]:\n");
	for (int op = 0; op < MOE_OP_COUNT; op++) {
		const struct moe_builtin *pick = moe_builtin_pick(moe_isa_effective(), (enum moe_op)op, NULL);
		int n = 0;
		printf("  %-11s %-*s", moe_op_name((enum moe_op)op), width, pick->table->name);
		for (size_t i = 0; i < moe_builtin_count(); i++) {
			const struct moe_builtin *b = moe_builtin_at(i);
			if (b->op == (enum moe_op)op)
				printf("%s %s [%s]", n++ ? "," : "", b->table->name, moe_isa_name(b->isa));
		}
		printf("%s\n", n ? "" : " (no optimized variant)");
	}
	return 0;
}
