// stable-commits parsing: the shell-variable subset accepted, and line-numbered errors for the rest.
import Builder
import Foundation
import Testing

@Suite struct StableCommitsTests {
    @Test(arguments: [
        ("A=b", "b"), ("A=\"b c\"", "b c"), ("A='b \"c\"'", "b \"c\""), ("export A=b", "b"), ("  A=b   # comment", "b"),
        ("A=\"x\\\"y\"", "x\"y"), ("A=", ""), ("A=https://example.invalid/x.git", "https://example.invalid/x.git"),
    ])
    func acceptsAssignments(line: String, value: String) throws {
        let file = try StableCommits(text: "# header\n\n\(line)\n", path: "sc")
        #expect(file.variables["A"]?.value == value)
        #expect(file.variables["A"]?.line == 3)
    }

    @Test(arguments: [
        ("A = b", "no spaces"), ("A=$HOME", "not allowed in an unquoted value"), ("A=\"$HOME\"", "expansion"),
        ("A=\"open", "unterminated double quote"), ("A='open", "unterminated single quote"), ("echo hi", "expected"),
        ("A=b c", "unexpected text"), ("A=`id`", "not allowed"), ("1A=b", "expected NAME=VALUE"),
    ])
    func rejectsEverythingElseWithTheLine(line: String, reason: String) {
        #expect {
            _ = try StableCommits(text: "B=ok\n# comment\n\(line)\n", path: "sc")
        } throws: { error in
            guard case BuilderError.stableCommitsSyntax(_, let number, let text, let message) = error else { return false }
            return number == 3 && text == line && message.contains(reason) && "\(error)".contains("sc:3:")
        }
    }

    @Test func pinsOverrideBranches() throws {
        let file = try StableCommits(
            text: "QEMU_GIT_URL=u\nQEMU_BRANCH=b\nQEMU_COMMIT=ABCDEF1\nOVMF_GIT_URL=o\nOVMF_TAG=edk2-stable202405\n"
                + "KERNEL_GIT_URL=k\nKERNEL_HOST_BRANCH=h\n", path: "sc")
        #expect(try file.source(for: .qemu).ref == .commit("abcdef1"))
        #expect(try file.source(for: .ovmf).ref == .tag("edk2-stable202405"))
        #expect(try file.source(for: .kernelHost).ref == .branch("h"))
        #expect(try file.source(for: .kernelHost).urlVariable == "KERNEL_GIT_URL")
        #expect(throws: BuilderError.variableMissing(path: "sc", variable: "KERNEL_GUEST_BRANCH", component: "kernel-guest")) {
            _ = try file.source(for: .kernelGuest)
        }
    }

    @Test(arguments: [
        ("QEMU_COMMIT=zzz1234", "QEMU_COMMIT"), ("QEMU_BRANCH=-x", "QEMU_BRANCH"), ("QEMU_BRANCH=a..b", "QEMU_BRANCH"),
    ])
    func rejectsUnsafeOrMalformedPins(line: String, variable: String) throws {
        let file = try StableCommits(text: "QEMU_GIT_URL=u\n\(line)\n", path: "sc")
        #expect {
            _ = try file.source(for: .qemu)
        } throws: { error in
            guard case BuilderError.variableInvalid(_, 2, let name, _, _) = error else { return false }
            return name == variable
        }
    }

    @Test func refusesTwoPins() throws {
        let file = try StableCommits(text: "QEMU_GIT_URL=u\nQEMU_COMMIT=abcdef1\nQEMU_TAG=v1\n", path: "sc")
        #expect(throws: BuilderError.conflictingPins(path: "sc", first: "QEMU_COMMIT", second: "QEMU_TAG")) {
            _ = try file.source(for: .qemu)
        }
    }

    @Test(arguments: [
        (["kernel"], [Component.kernelHost, .kernelGuest]), (["kernel", "guest"], [.kernelGuest]), ([], Component.allCases),
        (["ovmf", "qemu"], [.qemu, .ovmf]), (["kernel", "host", "qemu"], [.qemu, .kernelHost]),
    ])
    func selectsComponents(words: [String], expected: [Component]) throws {
        #expect(try Component.parseSelection(words) == expected)
    }

    @Test func unknownComponentIsNamed() {
        #expect(throws: BuilderError.unknownComponent(word: "seabios")) { try Component.parseSelection(["qemu", "seabios"]) }
    }
}
