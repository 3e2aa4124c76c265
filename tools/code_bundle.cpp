// code_bundle: pgolf's counted code bytes (docs/artifact.md, "Code bytes").
//
//   code_bundle ROOT ENTRIES BUNDLE CODE_SIZE_CPP [LRZIP]
//
// ENTRIES lists, one absolute path per line, the files the evaluator starts
// from (src/cli/main.cpp and the commands it must have) and the build files
// (CMakeLists.txt, cmake/*.cmake, this file). The counted set is their closure
// under three rules, taken to a fixpoint, so it can never drift from the code:
//   - a project #include "x/y.h" brings the file the compiler finds: beside
//     the includer, or src/x/y.h (the layers' include roots), or ROOT/x/y.h;
//   - a header brings the .cpp of the same name;
//   - a header brings its folder's .cpp files that have no header of their
//     own (kernels/attention.cpp defines part of kernels/fused.h; CMake builds
//     a layer from every .cpp of its folder), except in the entries' own
//     folders, whose files are the entry points, chosen one by one (src/cli).
// Includes inside #if blocks are followed too: the set errs on the large side.
//
// Writes BUNDLE, the set as a POSIX ustar archive, compressed with lrzip's
// ZPAQ back end when the LRZIP program is given (`lrzip -z -L 9`, one thread:
// the per-group artifact codec's compressor; `lrunzip BUNDLE && tar xf` unpacks
// it), else with brotli (quality 11, window 2^24: `brotli -d < BUNDLE | tar x`),
// and CODE_SIZE_CPP, pgolf::code_size() and the file table
// (common/code_size.h); each only when its bytes change, so an unchanged count
// rebuilds nothing. On pgolf's set ZPAQ is 17 % smaller than brotli, brotli
// 1.6 % smaller than `xz -9e`.
//
// A host tool: the C++ library and libbrotlienc only (lrzip is a program), so
// it builds before any layer.
#include <brotli/encode.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int kQuality = 11;
constexpr int kWindowBits = 24;

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string() + ": cannot open for reading");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_if_different(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  if (fs::exists(path, ec) && read_bytes(path) == bytes) return;
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) fail(tmp.string() + ": write failed");
  }
  fs::rename(tmp, path);
}

// The names in `#include "name"` lines (not <...>: those are not the project's).
std::vector<std::string> project_includes(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line[i] != '#') continue;
    i = line.find_first_not_of(" \t", i + 1);
    if (i == std::string::npos || line.compare(i, 7, "include") != 0) continue;
    i = line.find_first_not_of(" \t", i + 7);
    if (i == std::string::npos || line[i] != '"') continue;
    const size_t end = line.find('"', i + 1);
    if (end != std::string::npos) names.push_back(line.substr(i + 1, end - i - 1));
  }
  return names;
}

bool is_file(const fs::path& path) { return fs::is_regular_file(path); }

// The closure of `entries` (paths relative to `root`), sorted.
std::set<std::string> closure(const fs::path& root, const std::vector<std::string>& entries) {
  std::set<std::string> entry_folders;
  for (const std::string& e : entries) entry_folders.insert(fs::path(e).parent_path().string());
  std::set<std::string> done;
  std::vector<std::string> todo(entries.begin(), entries.end());
  while (!todo.empty()) {
    const std::string file = todo.back();
    todo.pop_back();
    if (!done.insert(file).second) continue;
    const fs::path rel(file);
    const std::string ext = rel.extension().string();
    if (ext != ".h" && ext != ".cpp") continue;  // build files include nothing
    // The compiler's order for "...": the including file's folder, then the
    // include roots (src/ through the layers', the checkout's for tests).
    for (const std::string& name : project_includes(read_bytes(root / rel))) {
      bool found = false;
      for (const fs::path& base : {rel.parent_path(), fs::path("src"), fs::path()}) {
        const fs::path candidate = (base / name).lexically_normal();
        if (is_file(root / candidate) && *candidate.begin() != "..") {
          todo.push_back(candidate.string());
          found = true;
          break;
        }
      }
      if (!found) fail(file + ": #include \"" + name + "\" is not a file of the checkout");
    }
    if (ext != ".h") continue;
    fs::path source = rel;
    if (is_file(root / source.replace_extension(".cpp"))) todo.push_back(source.string());
    const fs::path folder = rel.parent_path();
    if (entry_folders.count(folder.string())) continue;
    for (const auto& item : fs::directory_iterator(root / folder)) {
      fs::path header = item.path();
      if (item.path().extension() == ".cpp" && !is_file(header.replace_extension(".h"))) {
        todo.push_back((folder / item.path().filename()).string());
      }
    }
  }
  return done;
}

// A ustar header field: `value` in octal, zero-padded, NUL-terminated.
void put_octal(char* field, size_t width, uint64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

// The files as a POSIX ustar archive: sorted, mode 0644, owner 0:0 with no
// names, mtime 0, no directory entries, ending in two zero blocks. Written by
// hand because tar, libarchive and `cmake -E tar` record the files' owners
// and times: this archive depends on the files' paths and bytes alone.
std::string ustar(const fs::path& root, const std::set<std::string>& files) {
  std::string archive;
  for (const std::string& name : files) {
    const std::string data = read_bytes(root / name);
    char header[512] = {};
    if (name.size() <= 100) {
      name.copy(header, name.size());
    } else {  // the ustar split: prefix (<= 155) '/' name (<= 100)
      const size_t slash = name.rfind('/', 155);
      if (slash == std::string::npos || name.size() - slash - 1 > 100) {
        fail(name + ": path too long for ustar");
      }
      name.copy(header, name.size() - slash - 1, slash + 1);
      name.copy(header + 345, slash);
    }
    put_octal(header + 100, 8, 0644);
    put_octal(header + 108, 8, 0);
    put_octal(header + 116, 8, 0);
    put_octal(header + 124, 12, data.size());
    put_octal(header + 136, 12, 0);
    header[156] = '0';                      // a regular file
    std::copy_n("ustar", 6, header + 257);  // the magic, NUL included
    std::copy_n("00", 2, header + 263);     // the version
    std::fill_n(header + 148, 8, ' ');      // the checksum counts its own field as spaces
    unsigned sum = 0;
    for (unsigned char c : header) sum += c;
    std::snprintf(header + 148, 7, "%06o", sum);  // then NUL, then the space left
    archive.append(header, sizeof header);
    archive += data;
    archive.append((512 - data.size() % 512) % 512, '\0');
  }
  archive.append(1024, '\0');
  return archive;
}

std::string brotli(const std::string& data) {
  size_t size = BrotliEncoderMaxCompressedSize(data.size());
  std::string out(size, '\0');
  if (!BrotliEncoderCompress(kQuality, kWindowBits, BROTLI_MODE_GENERIC, data.size(),
                             reinterpret_cast<const uint8_t*>(data.data()), &size,
                             reinterpret_cast<uint8_t*>(out.data()))) {
    fail("brotli: compression failed");
  }
  out.resize(size);
  return out;
}

// `lrzip -z -L 9 -p 1` of `data` through files beside `out`; the bytes do not
// depend on the machine (one thread, the built-in defaults, not lrzip.conf).
std::string lrzip(const std::string& program, const std::string& data, const fs::path& out) {
  const fs::path in = out.string() + ".tar.tmp";
  const fs::path packed = out.string() + ".lrz.tmp";
  write_if_different(in, data);
  const std::string command = "LRZIP=NOCONFIG '" + program + "' -Q -z -L 9 -p 1 -f -o '" +
                              packed.string() + "' '" + in.string() + "'";
  const int rc = std::system(command.c_str());
  fs::remove(in);
  if (rc != 0) fail("lrzip failed (" + command + ")");
  std::string bytes = read_bytes(packed);
  fs::remove(packed);
  return bytes;
}

// A C++ string literal for a path: quotes and backslashes escaped.
std::string literal(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

void run(const fs::path& root, const fs::path& entries_file, const fs::path& bundle_path,
         const fs::path& cpp_path, const std::string& lrzip_program) {
  std::vector<std::string> entries;
  std::istringstream lines(read_bytes(entries_file));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const fs::path rel = fs::path(line).lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") fail(line + ": not inside " + root.string());
    if (!is_file(root / rel)) fail(line + ": no such file");
    entries.push_back(rel.string());
  }
  const std::set<std::string> files = closure(root, entries);
  const std::string archive = ustar(root, files);
  const std::string codec = lrzip_program.empty() ? "brotli" : "lrzip";
  const std::string bundle =
      lrzip_program.empty() ? brotli(archive) : lrzip(lrzip_program, archive, bundle_path);

  int64_t raw = 0;
  std::string table;
  for (const std::string& name : files) {
    const auto bytes = static_cast<int64_t>(fs::file_size(root / name));
    raw += bytes;
    table += "      {" + literal(name) + ", " + std::to_string(bytes) + "},\n";
  }
  const std::string bundle_name = bundle_path.filename().string();
  const std::string cpp =
      "// Generated by tools/code_bundle.cpp; do not edit.\n"
      "#include \"common/code_size.h\"\n"
      "namespace pgolf {\n"
      "CodeSize code_size() {\n"
      "  return {" +
      std::to_string(bundle.size()) + ", " + std::to_string(files.size()) + ", " +
      std::to_string(raw) + ", " + literal(codec) + ", " + literal(bundle_name) +
      "};\n"
      "}\n"
      "const std::vector<CodeFile>& code_file_table() {\n"
      "  static const std::vector<CodeFile> files = {\n" +
      table +
      "  };\n"
      "  return files;\n"
      "}\n"
      "}  // namespace pgolf\n";
  write_if_different(bundle_path, bundle);
  write_if_different(cpp_path, cpp);
  std::cout << "pgolf code: " << files.size() << " files, " << raw << " bytes -> " << bundle_name
            << ", " << bundle.size() << " bytes counted (" << codec << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::cerr << "usage: code_bundle ROOT ENTRIES BUNDLE CODE_SIZE_CPP [LRZIP]\n";
    return 2;
  }
  try {
    fs::path root = fs::path(argv[1]).lexically_normal();
    if (!root.has_filename()) root = root.parent_path();  // "/x/" -> "/x"
    run(root, argv[2], argv[3], argv[4], argc == 6 ? argv[5] : "");
  } catch (const std::exception& e) {
    std::cerr << "code_bundle: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
