# node-gyp build of gradlens_native.node (N-API, C, linked against the system OpenBLAS).
{
  "targets": [
    {
      "target_name": "gradlens_native",
      "sources": ["src/gradlens_native.c", "src/conv.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-fopenmp-simd", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lopenblas"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp-simd"]
      }
    }
  ]
}
