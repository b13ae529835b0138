{
  "targets": [
    {
      "target_name": "heartwatch",
      "sources": ["<!@(node scripts/gyp-sources.js)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NDEBUG",
        "HW_VERSION=<!(node -p \"require('./package.json').version\")",
        "<!@(node scripts/liburing.js defines)"
      ],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=c++17", "-O2", "-O0"],
      "cflags": ["-O3", "-pthread", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++20", "-O3", "-pthread", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fexceptions"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl", "<!@(node scripts/liburing.js libraries)"]
    }
  ]
}
