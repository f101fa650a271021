// See program_check.hpp.
#include "program_check.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace greenrun {

namespace {

struct ElfInfo {
    bool is_elf = false;
    bool is64 = false;
    unsigned machine = 0;
    bool has_interp = false;
    std::string interp;
    std::string error;
};

const char* machine_name(unsigned m) {
    switch (m) {
        case EM_X86_64: return "x86-64";
        case EM_386: return "i386";
        case EM_AARCH64: return "aarch64";
        case EM_ARM: return "arm";
        case EM_RISCV: return "riscv";
        default: return "another architecture";
    }
}

template <class Ehdr, class Phdr>
void read_headers(int fd, ElfInfo& info) {
    Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh)) {
        info.error = "truncated ELF header";
        return;
    }
    info.machine = eh.e_machine;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Phdr ph;
        if (pread(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * eh.e_phentsize)) !=
            static_cast<ssize_t>(sizeof ph)) {
            info.error = "truncated program headers";
            return;
        }
        if (ph.p_type == PT_INTERP) {
            info.has_interp = true;
            std::string s(ph.p_filesz, '\0');
            if (pread(fd, s.data(), s.size(), static_cast<off_t>(ph.p_offset)) == static_cast<ssize_t>(s.size()))
                info.interp = s.c_str();
        }
    }
}

ElfInfo read_elf(const std::string& path) {
    ElfInfo info;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        info.error = std::strerror(errno);
        return info;
    }
    unsigned char ident[EI_NIDENT] = {};
    if (pread(fd, ident, sizeof ident, 0) == EI_NIDENT && std::memcmp(ident, ELFMAG, SELFMAG) == 0) {
        info.is_elf = true;
        info.is64 = ident[EI_CLASS] == ELFCLASS64;
        if (info.is64) read_headers<Elf64_Ehdr, Elf64_Phdr>(fd, info);
        else read_headers<Elf32_Ehdr, Elf32_Phdr>(fd, info);
    }
    close(fd);
    return info;
}

std::string describe(const ElfInfo& e) {
    return std::string("ELF ") + (e.is64 ? "64" : "32") + "-bit " + machine_name(e.machine);
}

// "#!/usr/bin/python3 -u" -> "/usr/bin/python3"; "" when not a script.
std::string shebang_interpreter(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::string line;
    if (!std::getline(f, line) || line.size() < 3 || line.compare(0, 2, "#!") != 0) return {};
    size_t b = line.find_first_not_of(" \t", 2);
    if (b == std::string::npos) return {};
    size_t e = line.find_first_of(" \t\r", b);
    return line.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

void refuse(Verdict& v, int status, std::string why) {
    v.active = false;
    v.refusal_status = status;
    v.refusal = std::move(why);
}

void check_file(const std::string& path, const ElfInfo& preload, Verdict& v, int depth) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return refuse(v, 127, path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return refuse(v, 126, path + " is not a regular file");
    if (access(path.c_str(), X_OK) != 0) return refuse(v, 126, path + " is not executable");

    std::string interp = shebang_interpreter(path);
    if (!interp.empty()) {
        v.notes.push_back(path + ": a script run by " + interp);
        if (depth >= 4) return refuse(v, 126, path + ": interpreter chain too deep");
        return check_file(interp, preload, v, depth + 1);
    }

    ElfInfo elf = read_elf(path);
    if (!elf.is_elf) {
        // The kernel says ENOEXEC; execvp (and so env, nice, timeout) then
        // runs the file with /bin/sh, and so does greenrun.
        if (depth > 0) return refuse(v, 126, path + " is neither an ELF executable nor a #! script; the kernel cannot run it");
        v.notes.push_back(path + ": no #! line, run by /bin/sh as execvp would");
        v.via_sh = true;
        return check_file("/bin/sh", preload, v, depth + 1);
    }
    if (!elf.error.empty()) return refuse(v, 126, path + ": " + elf.error);
    if (!elf.has_interp)
        return refuse(v, 126,
                      path + " is statically linked: the dynamic loader never runs for it, so LD_PRELOAD "
                             "(and the shim) cannot apply. Link it dynamically (without -static) to use green.");
    v.notes.push_back(path + ": " + describe(elf) + ", dynamically linked (interpreter " + elf.interp + ")");
    if (preload.is_elf && (elf.is64 != preload.is64 || elf.machine != preload.machine))
        return refuse(v, 126,
                      path + " is " + describe(elf) + " but the shim is " + describe(preload) +
                          ": the loader would skip it.");

    // Secure mode (AT_SECURE): exec changes credentials, and the loader then
    // ignores LD_PRELOAD entries that contain a slash.
    bool setuid_changes = (st.st_mode & S_ISUID) && st.st_uid != getuid();
    bool setgid_changes = (st.st_mode & S_ISGID) && st.st_gid != getgid();
    if (setuid_changes || setgid_changes)
        return refuse(v, 126,
                      path + " is " + (setuid_changes ? "setuid" : "setgid") +
                          ": exec runs it with other credentials, and the loader then ignores LD_PRELOAD "
                          "(secure mode), so the shim would not be loaded. Run a copy without the " +
                          (setuid_changes ? "setuid" : "setgid") + " bit.");
    if (st.st_mode & (S_ISUID | S_ISGID))
        v.notes.push_back(path + ": setuid/setgid bit set, but it runs as you already, so LD_PRELOAD applies");
    if (getxattr(path.c_str(), "security.capability", nullptr, 0) > 0)
        return refuse(v, 126,
                      path + " has file capabilities: the loader runs it in secure mode and ignores LD_PRELOAD.");
    v.active = true;
}

}  // namespace

std::string resolve_in_path(const std::string& command) {
    if (command.find('/') != std::string::npos) return command;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    for (;;) {
        size_t colon = dirs.find(':', start);
        std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + command;
        struct stat st;
        if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0)
            return candidate;
        if (colon == std::string::npos) return {};
        start = colon + 1;
    }
}

Verdict check_program(const std::string& command, const std::string& preload) {
    Verdict v;
    v.program = resolve_in_path(command);
    if (v.program.empty()) {
        refuse(v, 127, command + ": command not found in PATH");
        return v;
    }
    if (preload.find_first_of(": ") != std::string::npos) {
        refuse(v, 126, "the shim's path '" + preload + "' contains ':' or ' ', which LD_PRELOAD cannot express");
        return v;
    }
    ElfInfo lib = read_elf(preload);
    check_file(v.program, lib, v, 0);
    return v;
}

}  // namespace greenrun
