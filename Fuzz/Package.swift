// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets, kept out of the main package so that `swift build` and `swift test` there never see them.
// Build and run with ./run.sh (which passes `--sanitize fuzzer --sanitize address`); see README.md.
let package = Package(
    name: "FlashMemFuzz",
    dependencies: [.package(name: "FlashMem", path: "..")],
    targets: [
        // bytes → BundleReader.parse (both validation passes, checksums) → LoadedBundle.
        .executableTarget(name: "fuzz-bundle", dependencies: [
            .product(name: "FlashMemRuntime", package: "FlashMem"),
        ], path: "Sources/fuzz-bundle"),
        // bytes → ONNXImporter.prepare (import, simplification, constant folding, shape inference).
        .executableTarget(name: "fuzz-onnx", dependencies: [
            .product(name: "FlashMemCompiler", package: "FlashMem"),
        ], path: "Sources/fuzz-onnx"),
    ],
    swiftLanguageModes: [.v5]
)
