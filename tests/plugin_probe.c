/* plugin_probe PATH: loads a backend plugin with moe_plugin_open, as moebench does, and prints its
 * name and the ops it provides. Exit 0 when it loads, 1 with the loader's message when it does
 * not. Used by the ctest that builds the example backend out of tree against the installed SDK. */
#include <stdio.h>

#include "plugin.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: plugin_probe PATH.so\n");
		return 2;
	}
	struct moe_plugin *p;
	if (moe_plugin_open(argv[1], &p) != MOE_OK) {
		fprintf(stderr, "plugin_probe: %s\n", moe_last_error());
		return 1;
	}
	const struct moe_backend *b = moe_plugin_backend(p);
	printf("%s: %s\nops:", b->name, b->description ? b->description : "");
	for (int op = 0; op < MOE_OP_COUNT; op++)
		if (moe_backend_provides(b, (enum moe_op)op, NULL))
			printf(" %s", moe_op_name((enum moe_op)op));
	printf("\n");
	moe_plugin_close(p);
	return 0;
}
