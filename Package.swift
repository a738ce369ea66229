// swift-tools-version:6.0
import PackageDescription

// Dependency direction: FMBFormat ← FlashMemCompiler, FMBFormat ← FlashMemRuntime.
// The runtime never sees the compiler, shaderc or protobuf-c.
// shaderc and what it needs, as static archives in one linker group (their order is then irrelevant).
let shadercLinkFlags = ["-Xlinker", "--start-group"]
    + ["shaderc_combined", "SPIRV", "glslang", "MachineIndependent", "OSDependent", "OGLCompiler",
       "GenericCodeGen", "SPIRV-Tools-opt", "SPIRV-Tools"].flatMap { ["-Xlinker", "-l:lib\($0).a"] }
    + ["-Xlinker", "--end-group", "-lstdc++"]
    // protobuf-c statically too, so a release fmc runs where libprotobuf-c is not installed.
    + ["-Xlinker", "-l:libprotobuf-c.a"]
// GLPK (the load plan's MIP; compiler only) and what it needs, statically for the same reason.
let glpkArchives: [String] = ["glpk", "colamd", "amd", "suitesparseconfig", "gmp", "ltdl", "z"]
let glpkLinkFlags: [String] = glpkArchives.flatMap { ["-Xlinker", "-l:lib\($0).a"] } + ["-ldl"]

let package = Package(
    name: "FlashMem",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "FlashMemRuntime", targets: ["FlashMemRuntime"]),
        .library(name: "FlashMemCompiler", targets: ["FlashMemCompiler"]),
        .executable(name: "fmc", targets: ["fmc"]),
        .executable(name: "fmrun", targets: ["fmrun"]),
        .executable(name: "fmc-conformance", targets: ["fmc-conformance"]),
        // The C API (Runtime/FlashMemC/include/flashmem.h) as libflashmem.so.
        .library(name: "flashmem", type: .dynamic, targets: ["FlashMemC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (make docs); a command plugin, adds no code to any product.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan"),
        .systemLibrary(name: "CShaderc", path: "Sources/CShaderc"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CProtobufC", path: "Sources/CProtobufC"),
        // GLPK's MIP solver, for the exact load planner; the compiler only (the runtime never links it).
        .systemLibrary(name: "CGLPK", path: "Sources/CGLPK"),
        .target(name: "COnnx", dependencies: ["CProtobufC"], path: "Sources/COnnx",
                exclude: ["proto", "regenerate.sh"]),

        // MARK: Runtime side
        .target(name: "FMBFormat", dependencies: ["CZstd"], path: "Runtime/FMBFormat",
                exclude: ["FORMAT.md"]),
        .target(name: "FlashMemRuntime", dependencies: ["FMBFormat", "CVulkan"], path: "Runtime/FlashMemRuntime"),
        .executableTarget(name: "fmrun", dependencies: [
            "FlashMemRuntime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Runtime/fmrun"),
        // The C API: @_cdecl functions over FlashMemRuntime; flashmem.h is the header C callers include.
        .target(name: "FlashMemC", dependencies: ["FlashMemRuntime"], path: "Runtime/FlashMemC",
                exclude: ["include", "flashmem.pc.in"]),

        // MARK: Compiler side
        .target(name: "FlashMemCompiler", dependencies: ["FMBFormat", "COnnx", "CShaderc", "CGLPK"],
                path: "Sources/FlashMemCompiler",
                linkerSettings: [.unsafeFlags(shadercLinkFlags + glpkLinkFlags)]),
        .executableTarget(name: "fmc", dependencies: [
            "FlashMemCompiler",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/fmc"),

        // The ONNX backend node tests, compiled and run on a Vulkan device (issue 3's conformance table).
        .executableTarget(name: "fmc-conformance", dependencies: [
            "FlashMemCompiler", "FlashMemRuntime", "COnnx", "CProtobufC",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/fmc-conformance"),

        // MARK: Examples (apps embedding the runtime; Examples/run-examples.sh runs and checks them)
        // What several examples share (PPM images, text boxes, command lines); no runtime code.
        .target(name: "ExampleSupport", path: "Examples/ExampleSupport"),
        .executableTarget(name: "sentence-similarity", dependencies: ["FlashMemRuntime", "ExampleSupport"],
                          path: "Examples/sentence-similarity"),
        .executableTarget(name: "detect-text", dependencies: ["FlashMemRuntime", "ExampleSupport"], path: "Examples/detect-text"),
        // Detector → direction classifier → recognizer in one DeviceContext under one budget.
        .executableTarget(name: "read-text", dependencies: ["FlashMemRuntime", "ExampleSupport"], path: "Examples/read-text"),

        // MARK: Tests
        // Helpers both the compiler and the runtime test targets use (hand-built graphs, expected errors);
        // only test targets depend on it.
        .target(name: "TestSupport", dependencies: ["FlashMemCompiler"], path: "Tests/TestSupport"),
        // fuzz-regressions/: inputs Fuzz/ found crashing, read from the source tree by the regression tests.
        .testTarget(name: "FMBFormatTests", dependencies: ["FMBFormat"], path: "Tests/FMBFormatTests",
                    exclude: ["fuzz-regressions"], resources: [.copy("golden")]),
        .testTarget(name: "FlashMemCompilerTests", dependencies: ["FlashMemCompiler", "TestSupport", "COnnx"],
                    path: "Tests/FlashMemCompilerTests"),
        .testTarget(name: "FlashMemRuntimeTests", dependencies: ["FlashMemRuntime", "FlashMemCompiler", "TestSupport"],
                    path: "Tests/FlashMemRuntimeTests"),
    ],
    swiftLanguageModes: [.v5]
)
