# The Asan build type: AddressSanitizer + UndefinedBehaviorSanitizer, any
# finding aborts (no recovery), so ctest sees it as a failure.
set(BH_ASAN_FLAGS "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all")
set(CMAKE_C_FLAGS_ASAN "${BH_ASAN_FLAGS}" CACHE STRING "C flags for the Asan build type" FORCE)
set(CMAKE_EXE_LINKER_FLAGS_ASAN "-fsanitize=address,undefined" CACHE STRING "" FORCE)
set(CMAKE_SHARED_LINKER_FLAGS_ASAN "-fsanitize=address,undefined" CACHE STRING "" FORCE)
mark_as_advanced(CMAKE_C_FLAGS_ASAN CMAKE_EXE_LINKER_FLAGS_ASAN CMAKE_SHARED_LINKER_FLAGS_ASAN)
option(BH_FUZZ "Build with -fsanitize=fuzzer-no-link (clang) for libFuzzer harnesses" OFF)
if(BH_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  # clang warns about a string literal split over two lines inside an array
  # initializer, which gcc (the normal build) accepts and the tree has.
  add_compile_options(-Wno-string-concatenation)
  add_link_options(-fsanitize=address,undefined)
endif()
