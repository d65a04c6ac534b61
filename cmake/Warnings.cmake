# Warnings for every target of ours; -Werror so that none accumulate.
add_compile_options(
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
  -Wvla -Wundef -Werror)
