// GLSL → SPIR-V with libshaderc, from the sources embedded in fmc (ShaderSources.generated.swift).
// Owned by the lowering; the runtime never compiles shaders.

import CShaderc
import Foundation

/// A shader that failed to compile (or warned: warnings are errors), with what the compiler said.
public struct ShaderCompileError: Error, CustomStringConvertible, Sendable {
    public var shader: String
    public var defines: [String: String]
    public var message: String

    public init(shader: String, defines: [String: String], message: String) {
        self.shader = shader
        self.defines = defines
        self.message = message
    }

    public var description: String {
        let flags = defines.keys.sorted().map { "-D\($0)=\(defines[$0]!)" }.joined(separator: " ")
        return "shader \(shader)\(flags.isEmpty ? "" : " (\(flags))"): \(message)"
    }
}

/// Compiles the embedded GLSL compute kernels to SPIR-V for Vulkan 1.2, optimized for performance, with
/// warnings as errors; `#include "x.glsl"` resolves against the same embedded sources. Each
/// (file, defines) variant is compiled once per instance.
///
/// Owns a `shaderc_compiler_t` (released in deinit). Not thread-safe: use one instance per compile.
public final class ShaderCompiler {
    private struct Key: Hashable {
        var file: String
        var defines: [String: String]
    }

    private let compiler: shaderc_compiler_t
    /// Boxed so the C include callback can reach it through its `user_data` pointer.
    private let includes: IncludeTable
    private var cache: [Key: [UInt32]] = [:]

    public var sources: [String: String] { includes.sources }

    /// `sources`: GLSL by file name (default: the sources embedded in fmc).
    public init(sources: [String: String] = ShaderSources.files) throws {
        guard let compiler = shaderc_compiler_initialize() else {
            throw ShaderCompileError(shader: "-", defines: [:], message: "shaderc_compiler_initialize failed")
        }
        self.compiler = compiler
        self.includes = IncludeTable(sources)
    }

    deinit {
        shaderc_compiler_release(compiler)
    }

    /// The SPIR-V words of `file` (e.g. "conv2d.comp") compiled with `defines` (`-Dkey=value`).
    public func compile(_ file: String, defines: [String: String] = [:]) throws -> [UInt32] {
        let key = Key(file: file, defines: defines)
        if let spirv = cache[key] {
            return spirv
        }
        guard let source = includes.sources[file] else {
            throw ShaderCompileError(shader: file, defines: defines, message: "no embedded shader with this name")
        }
        guard let options = shaderc_compile_options_initialize() else {
            throw ShaderCompileError(shader: file, defines: defines, message: "shaderc_compile_options_initialize failed")
        }
        defer { shaderc_compile_options_release(options) }
        shaderc_compile_options_set_source_language(options, shaderc_source_language_glsl)
        shaderc_compile_options_set_target_env(options, shaderc_target_env_vulkan,
                                               UInt32(shaderc_env_version_vulkan_1_2.rawValue))
        shaderc_compile_options_set_optimization_level(options, shaderc_optimization_level_performance)
        shaderc_compile_options_set_warnings_as_errors(options)
        for name in defines.keys.sorted() {
            let value = defines[name]!
            shaderc_compile_options_add_macro_definition(options, name, name.utf8.count, value, value.utf8.count)
        }
        shaderc_compile_options_set_include_callbacks(options, resolveInclude, releaseInclude,
                                                      Unmanaged.passUnretained(includes).toOpaque())

        let result = source.withCString { text in
            shaderc_compile_into_spv(compiler, text, strlen(text), shaderc_glsl_compute_shader, file, "main", options)
        }
        guard let result else {
            throw ShaderCompileError(shader: file, defines: defines, message: "shaderc returned no result")
        }
        defer { shaderc_result_release(result) }
        guard shaderc_result_get_compilation_status(result) == shaderc_compilation_status_success else {
            let message = shaderc_result_get_error_message(result).map { String(cString: $0) } ?? "unknown error"
            throw ShaderCompileError(shader: file, defines: defines,
                                     message: message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let length = shaderc_result_get_length(result)
        guard length % 4 == 0, length > 0, let bytes = shaderc_result_get_bytes(result) else {
            throw ShaderCompileError(shader: file, defines: defines, message: "SPIR-V of \(length) bytes is not whole words")
        }
        let spirv = [UInt32](unsafeUninitializedCapacity: length / 4) { words, count in
            memcpy(words.baseAddress!, bytes, length)
            count = length / 4
        }
        cache[key] = spirv
        return spirv
    }
}

// MARK: - Include resolution (C callbacks)

/// The sources an `#include` may name; a class so its address can travel as the callbacks' `user_data`.
final class IncludeTable {
    let sources: [String: String]

    init(_ sources: [String: String]) {
        self.sources = sources
    }
}

/// shaderc_include_resolve_fn: returns the embedded file, or (per shaderc's contract) an empty
/// source_name with the error message as content.
private let resolveInclude: shaderc_include_resolve_fn = { userData, requested, _, requesting, _ in
    let table = Unmanaged<IncludeTable>.fromOpaque(userData!).takeUnretainedValue()
    let name = requested.map { String(cString: $0) } ?? ""
    let result = UnsafeMutablePointer<shaderc_include_result>.allocate(capacity: 1)
    let sourceName: String
    let content: String
    if let text = table.sources[name] {
        sourceName = name
        content = text
    } else {
        let from = requesting.map { String(cString: $0) } ?? "?"
        sourceName = ""
        content = "no embedded shader '\(name)' (included from \(from))"
    }
    let namePointer = strdup(sourceName)
    let contentPointer = strdup(content)
    result.initialize(to: shaderc_include_result(
        source_name: namePointer, source_name_length: namePointer.map { strlen($0) } ?? 0,
        content: contentPointer, content_length: contentPointer.map { strlen($0) } ?? 0,
        user_data: nil))
    return result
}

/// shaderc_include_result_release_fn: frees what resolveInclude allocated.
private let releaseInclude: shaderc_include_result_release_fn = { _, result in
    guard let result else { return }
    free(UnsafeMutablePointer(mutating: result.pointee.source_name))
    free(UnsafeMutablePointer(mutating: result.pointee.content))
    result.deallocate()
}
