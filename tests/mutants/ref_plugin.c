/* Not a mutant: the reference table itself, exported as a plugin. Verifying it through the plugin
 * path must pass everything, which shows the mutants fail for their bug and not for being plugins. */
#include "mutant.h"

void moe_mutant_setup(struct moe_backend *b)
{
	b->name = "ref-plugin";
	b->description = "the scalar reference, loaded as a plugin";
}
