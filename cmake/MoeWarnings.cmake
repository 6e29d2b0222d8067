# Warning and sanitizer flags shared by every target.
add_library(moe_build_flags INTERFACE)
target_compile_options(moe_build_flags INTERFACE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter)
if(MOE_WERROR)
  target_compile_options(moe_build_flags INTERFACE -Werror)
endif()
if(MOE_SANITIZE)
  target_compile_options(moe_build_flags INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(moe_build_flags INTERFACE -fsanitize=address,undefined)
endif()

# The oracle must not contract a*b+c into an FMA: its rounding is part of the contract.
set(MOE_REFERENCE_FLAGS -ffp-contract=off -fno-fast-math)
