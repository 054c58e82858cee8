import Foundation
import Testing

/// `callsctl config validate` on hostile files: an error and a non-zero exit, never a crash.
@Suite(.serialized) struct ConfigHardeningCLITests {
    @Test func validateRefusesAFortyThousandPartKey() throws {
        let dir = TempDir()
        let file = ConfigCLITests.write(dir, "deep.toml", Array(repeating: "a", count: 40_000).joined(separator: ".") + " = 1\n")
        let r = try CLI.run(["config", "validate", file], dataDir: dir.path)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stdout.contains("\(file):1: error: TOML syntax: nested too deeply: more than 64 levels"))
        #expect(r.stdout.contains("(column 129)"))
    }

    @Test func validateRefusesAnOverSizeFile() throws {
        let dir = TempDir()
        let file = ConfigCLITests.write(dir, "big.toml", "# " + String(repeating: "x", count: 2 << 20) + "\n")
        let r = try CLI.run(["config", "validate", file], dataDir: dir.path)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stdout.contains("\(file): error: the config file is 2097155 bytes, over the limit of 1048576 bytes (1 MiB)"))
    }
}
