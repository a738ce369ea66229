// The shader sources embedded in fmc (ShaderSources.generated.swift) must equal Shaders/ in the source
// tree: a shader edited without `python3 Shaders/embed.py` fails here.

import Foundation
import XCTest
@testable import FlashMemCompiler

final class ShaderEmbeddingTests: XCTestCase {
    /// <repo>/Shaders, found from this file's path (<repo>/Tests/FlashMemCompilerTests/…).
    private var shaderFolder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Shaders")
    }

    func testGeneratedSourcesMatchTheShaderFolder() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: shaderFolder.path)
            .filter { $0.hasSuffix(".comp") || $0.hasSuffix(".glsl") }
        XCTAssertFalse(names.isEmpty, "no shaders found under \(shaderFolder.path)")
        XCTAssertEqual(Set(ShaderSources.files.keys), Set(names),
                       "Shaders/ and the embedded sources list different files: run python3 Shaders/embed.py")
        for name in names {
            let text = try String(contentsOf: shaderFolder.appendingPathComponent(name), encoding: .utf8)
            XCTAssertEqual(ShaderSources.files[name], text, "\(name) is stale: run python3 Shaders/embed.py")
        }
    }

    func testEveryCatalogKernelIsEmbedded() {
        for family in KernelCatalog.all {
            XCTAssertNotNil(ShaderSources.files[family.file], family.file)
        }
        XCTAssertNotNil(ShaderSources.files["common.glsl"])
    }
}
