#!/usr/bin/env python3
"""Writes the case.json of every golden case in this directory (see README.md).

Edit the cases here, run `python3 tests/data/fsops/make_cases.py`, then produce or check the
expected texts with the C driver:

    FSOPS_GOLDEN_UPDATE=1 AGENTBOX_SOURCE_DIR=$PWD build/tests/test_fsops_golden <case>

and review every changed expected.txt by hand: the texts are a contract (deepagents 0.7.8).
"""
import json, os, base64, sys
OUT = os.path.dirname(os.path.abspath(__file__))
cases = {}
def case(name, tool, args, files=(), **kw):
    d = {"tool": tool, "args": args, "files": list(files)}
    d.update(kw)
    cases[name] = d
def f(path, text): return {"path": path, "text": text}
def fb(path, data): return {"path": path, "base64": base64.b64encode(data).decode()}
W = "/workspace"
lines3 = "def build_config():\n    return {}\n\nprint(build_config())\n"
# ---------------- read ----------------
case("read_basic", "read", {"path": W+"/app.py"}, [f(W+"/app.py", lines3)], is_error=False,
     structured={"path": W+"/app.py", "type": "text", "start_line": 1, "end_line": 4, "total_lines": 4, "truncated": False, "content": lines3.rstrip("\n")})
case("read_relative_path", "read", {"path": "src/./notes.txt"}, [f(W+"/src/notes.txt", "hello\nworld\n")], is_error=False)
case("read_pagination_notice", "read", {"path": W+"/big.txt"}, [f(W+"/big.txt", "".join("line %d\n" % i for i in range(1, 151)))],
     structured={"start_line": 1, "end_line": 100, "total_lines": 150, "next_offset": 100})
case("read_pagination_one_line", "read", {"path": W+"/a.txt", "offset": 1, "limit": 1}, [f(W+"/a.txt", "a\nb\nc\n")])
case("read_pagination_one_remaining", "read", {"path": W+"/a.txt", "limit": 2}, [f(W+"/a.txt", "a\nb\nc\n")])
case("read_marker_width", "read", {"path": W+"/w.txt", "offset": 97, "limit": 5}, [f(W+"/w.txt", "".join("row %d\n" % i for i in range(1, 121)))])
case("read_last_page", "read", {"path": W+"/w.txt", "offset": 115}, [f(W+"/w.txt", "".join("row %d\n" % i for i in range(1, 121)))])
case("read_long_line_split", "read", {"path": W+"/long.txt"}, [f(W+"/long.txt", "short\n" + ("abcdefghij" * 1200) + "\nend\n")])
case("read_crlf_normalised", "read", {"path": W+"/crlf.txt"}, [f(W+"/crlf.txt", "one\r\ntwo\r\nthree\rfour\n")])
case("read_no_trailing_newline", "read", {"path": W+"/n.txt"}, [f(W+"/n.txt", "a\n\nb")])
case("read_trailing_blank_line", "read", {"path": W+"/n.txt"}, [f(W+"/n.txt", "a\n\n")])
case("read_empty_file", "read", {"path": W+"/empty.txt"}, [f(W+"/empty.txt", "")], is_error=False)
case("read_whitespace_file", "read", {"path": W+"/ws.txt"}, [f(W+"/ws.txt", "  \n\t\n   \n")], is_error=False)
case("read_blank_page_of_nonblank_file", "read", {"path": W+"/b.txt", "offset": 1, "limit": 2}, [f(W+"/b.txt", "x\n\n\n\ny\n")],
     note="deviation: deepagents would say 'File exists but has empty contents' for a blank page")
case("read_limit_zero", "read", {"path": W+"/a.txt", "limit": 0}, [f(W+"/a.txt", "a\n")], is_error=False)
case("read_limit_negative", "read", {"path": W+"/a.txt", "limit": -3}, [f(W+"/a.txt", "a\n")])
case("read_limit_zero_empty_file", "read", {"path": W+"/e.txt", "limit": 0}, [f(W+"/e.txt", "")])
case("read_offset_past_end", "read", {"path": W+"/a.txt", "offset": 10}, [f(W+"/a.txt", "a\nb\nc\n")], is_error=True)
case("read_offset_negative", "read", {"path": W+"/a.txt", "offset": -5}, [f(W+"/a.txt", "a\nb\n")], is_error=False)
case("read_not_found", "read", {"path": W+"/missing.txt"}, is_error=True)
case("read_directory", "read", {"path": W+"/d"}, [{"path": W+"/d", "dir": True}], is_error=True)
case("read_permission_denied", "read", {"path": W+"/secret/key.txt"}, [f(W+"/secret/key.txt", "k\n")], deny=[W+"/secret"], is_error=True)
case("read_traversal", "read", {"path": "../etc/passwd"}, is_error=True)
case("read_traversal_backslash", "read", {"path": "/workspace/..\\x"}, is_error=True)
case("read_tilde", "read", {"path": "~/notes.txt"}, is_error=True)
case("read_windows_path", "read", {"path": "C:\\Users\\me\\a.txt"}, is_error=True)
case("read_dotdot_in_name_ok", "read", {"path": W+"/foo..bar.txt"}, [f(W+"/foo..bar.txt", "ok\n")], is_error=False)
png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
case("read_image_png", "read", {"path": W+"/pixel.png"}, [fb(W+"/pixel.png", png)], is_error=False,
     content=[{"type": "image", "mimeType": "image/png", "data": base64.b64encode(png).decode()}],
     structured={"type": "image", "mime_type": "image/png", "size": len(png)})
case("read_audio_wav", "read", {"path": W+"/a.WAV"}, [fb(W+"/a.WAV", b"RIFF\x24\x00\x00\x00WAVEfmt ")],
     content=[{"type": "audio", "mimeType": "audio/wav"}], structured={"type": "audio"})
case("read_pdf_resource", "read", {"path": W+"/doc.pdf"}, [fb(W+"/doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")],
     content=[{"type": "resource", "resource": {"uri": "file:///workspace/doc.pdf", "mimeType": "application/pdf", "blob": base64.b64encode(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n").decode()}}])
case("read_binary_by_content", "read", {"path": W+"/blob.dat"}, [fb(W+"/blob.dat", b"\x00\x01\xff\xfe binary")],
     content=[{"type": "resource", "resource": {"mimeType": "application/octet-stream", "blob": base64.b64encode(b"\x00\x01\xff\xfe binary").decode()}}],
     structured={"type": "file", "mime_type": "application/octet-stream"})
case("read_binary_too_large", "read", {"path": W+"/big.png"}, [fb(W+"/big.png", png * 4)], limits={"read_max_binary_bytes": 100}, is_error=True)
case("read_binary_content_too_large", "read", {"path": W+"/big.bin"}, [fb(W+"/big.bin", b"\xff" * 200)], limits={"read_max_binary_bytes": 100}, is_error=True)
case("read_empty_png", "read", {"path": W+"/empty.png"}, [f(W+"/empty.png", "")])
case("read_text_too_large", "read", {"path": W+"/t.txt"}, [f(W+"/t.txt", "x" * 200)], limits={"read_max_bytes": 100}, is_error=True)
case("read_token_budget_cut", "read", {"path": W+"/wide.txt"}, [{"path": W+"/wide.txt", "repeat": ("y" * 999) + "\n", "times": 100}],
     structured={"truncated": True, "end_line": 79, "next_offset": 79})
case("read_token_budget_no_full_line", "read", {"path": W+"/one.txt"}, [{"path": W+"/one.txt", "repeat": "z", "times": 100000}],
     structured={"truncated": True})
case("read_page_byte_cap", "read", {"path": W+"/huge.txt", "limit": 2000}, [{"path": W+"/huge.txt", "repeat": ("q" * 400) + "\n", "times": 2000}])
case("read_unknown_total", "read", {"path": W+"/mb.txt"}, [{"path": W+"/mb.txt", "repeat": ("m" * 59) + "\n", "times": 20000}])
case("read_symlink_inside", "read", {"path": W+"/link.txt"}, [f(W+"/real.txt", "real\n"), {"path": W+"/link.txt", "symlink": "real.txt"}])
case("read_symlink_contained", "read", {"path": W+"/esc"}, [{"path": W+"/esc", "symlink": "/../../../../etc/hostname"}], is_error=True,
     note="a symlink resolves inside the sandbox's view: the host's /etc/hostname is not reachable")
case("read_invalid_utf8_after_probe", "read", {"path": W+"/mixed.txt"}, [fb(W+"/mixed.txt", b"a" * 9000 + b"\nbad \xff byte\n")],
     note="deviation: deepagents' helper fails with a traceback; we show U+FFFD")
case("read_nul_in_text", "read", {"path": W+"/nul.txt"}, [fb(W+"/nul.txt", b"a\x00b\nc\n")])
case("read_quoted_name", "read", {"path": W+"/dir with space/it's \"q\" é.txt"}, [f(W+"/dir with space/it's \"q\" é.txt", "ünïcode ✓\n")])
case("read_unicode_long_line", "read", {"path": W+"/u.txt"}, [f(W+"/u.txt", "é" * 5001 + "\n")])
# ---------------- write ----------------
case("write_creates_parents", "write", {"path": W+"/a/b/c.txt", "content": "hello\n"}, is_error=False,
     after=[f(W+"/a/b/c.txt", "hello\n")], structured={"path": W+"/a/b/c.txt", "bytes_written": 6})
case("write_overwrites", "write", {"path": W+"/x.txt", "content": "new"}, [f(W+"/x.txt", "old content")], after=[f(W+"/x.txt", "new")])
case("write_relative", "write", {"path": "rel/out.txt", "content": "r"}, after=[f(W+"/rel/out.txt", "r")])
case("write_empty_content", "write", {"path": W+"/e.txt", "content": ""}, after=[f(W+"/e.txt", "")])
case("write_is_directory", "write", {"path": W+"/d", "content": "x"}, [{"path": W+"/d", "dir": True}], is_error=True)
case("write_parent_is_file", "write", {"path": W+"/f/x.txt", "content": "x"}, [f(W+"/f", "file")], is_error=True)
case("write_denied", "write", {"path": W+"/ro/x.txt", "content": "x"}, [{"path": W+"/ro", "dir": True}], deny=[W+"/ro"], is_error=True)
case("write_traversal", "write", {"path": "a/../../b.txt", "content": "x"}, is_error=True)
case("write_weird_name", "write", {"path": W+"/we ird/'q'\"d\"\nnl\ttab ü.txt", "content": "ok\n"}, after=[f(W+"/we ird/'q'\"d\"\nnl\ttab ü.txt", "ok\n")])
case("write_nul_content", "write", {"path": W+"/n.bin", "content": "a\u0000b"}, after=[fb(W+"/n.bin", b"a\x00b")])
# ---------------- edit ----------------
src = "import os\n\ndef f():\n    return 1\n\ndef g():\n    return 1\n"
case("edit_single", "edit", {"path": W+"/m.py", "old_string": "def f():", "new_string": "def f(x):"}, [f(W+"/m.py", src)], is_error=False,
     after=[f(W+"/m.py", src.replace("def f():", "def f(x):"))], structured={"occurrences": 1})
case("edit_multiple_error", "edit", {"path": W+"/m.py", "old_string": "return 1", "new_string": "return 2"}, [f(W+"/m.py", src)], is_error=True, after=[f(W+"/m.py", src)])
case("edit_replace_all", "edit", {"path": W+"/m.py", "old_string": "return 1", "new_string": "return 2", "replace_all": True}, [f(W+"/m.py", src)],
     after=[f(W+"/m.py", src.replace("return 1", "return 2"))], structured={"occurrences": 2})
case("edit_string_not_found", "edit", {"path": W+"/m.py", "old_string": "nope", "new_string": "x"}, [f(W+"/m.py", src)], is_error=True)
case("edit_file_not_found", "edit", {"path": W+"/none.py", "old_string": "a", "new_string": "b"}, is_error=True)
case("edit_not_regular", "edit", {"path": W+"/d", "old_string": "a", "new_string": "b"}, [{"path": W+"/d", "dir": True}], is_error=True)
case("edit_not_text", "edit", {"path": W+"/b.bin", "old_string": "a", "new_string": "b"}, [fb(W+"/b.bin", b"a\xff\xfe")], is_error=True)
case("edit_denied", "edit", {"path": W+"/s/k.txt", "old_string": "a", "new_string": "b"}, [f(W+"/s/k.txt", "a")], deny=[W+"/s"], is_error=True)
case("edit_crlf_preserved", "edit", {"path": W+"/w.txt", "old_string": "one\ntwo", "new_string": "uno\ndos\ntres"}, [f(W+"/w.txt", "zero\r\none\r\ntwo\r\n")],
     after=[f(W+"/w.txt", "zero\r\nuno\r\ndos\r\ntres\r\n")])
case("edit_lf_variant", "edit", {"path": W+"/w.txt", "old_string": "one\r\ntwo", "new_string": "1\r\n2"}, [f(W+"/w.txt", "one\ntwo\n")],
     after=[f(W+"/w.txt", "1\n2\n")])
case("edit_empty_old_empty_file", "edit", {"path": W+"/e.txt", "old_string": "", "new_string": "start\n"}, [f(W+"/e.txt", "")], after=[f(W+"/e.txt", "start\n")])
case("edit_empty_old_nonempty", "edit", {"path": W+"/e.txt", "old_string": "", "new_string": "x", "replace_all": True}, [f(W+"/e.txt", "abc")], is_error=True,
     after=[f(W+"/e.txt", "abc")], note="deviation: Python would interleave new_string between every character")
case("edit_too_large", "edit", {"path": W+"/big.txt", "old_string": "x", "new_string": "y"}, [f(W+"/big.txt", "x" * 200)], limits={"read_max_bytes": 100}, is_error=True)
case("edit_multiline_unicode", "edit", {"path": W+"/u.md", "old_string": "héllo\nwörld", "new_string": "✓"}, [f(W+"/u.md", "# t\nhéllo\nwörld\n")], after=[f(W+"/u.md", "# t\n✓\n")])
# ---------------- ls ----------------
case("ls_basic", "ls", {"path": W}, [f(W+"/b.py", "b"), f(W+"/a.py", "a"), {"path": W+"/src", "dir": True}, f(W+"/.env", "x")], is_error=False,
     structured={"path": W, "entries": [{"path": W+"/.env", "is_dir": False}, {"path": W+"/a.py", "is_dir": False}, {"path": W+"/b.py", "is_dir": False}, {"path": W+"/src", "is_dir": True, "type": "directory"}]})
case("ls_default_workspace", "ls", {}, [f(W+"/only.txt", "x")])
case("ls_relative", "ls", {"path": "sub"}, [f(W+"/sub/x", "x")])
case("ls_empty", "ls", {"path": W+"/e"}, [{"path": W+"/e", "dir": True}], is_error=False, structured={"entries": []})
case("ls_not_found", "ls", {"path": W+"/nope"}, is_error=True)
case("ls_not_a_directory", "ls", {"path": W+"/f.txt"}, [f(W+"/f.txt", "x")], is_error=True)
case("ls_denied", "ls", {"path": W+"/priv"}, [f(W+"/priv/x", "x")], deny=[W+"/priv"], is_error=True)
case("ls_root", "ls", {"path": "/"})
case("ls_python_repr_quoting", "ls", {"path": W+"/q"}, [f(W+"/q/it's", ""), f(W+"/q/say \"hi\"", ""), f(W+"/q/both'\"", ""), f(W+"/q/back\\slash", ""),
     f(W+"/q/new\nline", ""), f(W+"/q/tab\there", ""), f(W+"/q/caf\u00e9", ""), f(W+"/q/zw\u200bsp", ""), f(W+"/q/del\u007f", ""), f(W+"/q/bell\u0007", ""),
     f(W+"/q/nbsp\u00a0x", ""), f(W+"/q/emoji\U0001F600", ""), f(W+"/q/cr\rx", ""), f(W+"/q/priv\ue000", "")])
case("ls_truncated", "ls", {"path": W+"/many"}, [f(W+"/many/" + ("%04d" % i) + "_" + "n" * 240, "") for i in range(400)])
case("ls_symlinks", "ls", {"path": W+"/l"}, [f(W+"/l/t", "x"), {"path": W+"/l/to_dir", "symlink": "/workspace"}, {"path": W+"/l/dangling", "symlink": "nowhere"}],
     structured={"entries": [{"path": W+"/l/dangling", "is_dir": False, "type": "symlink"}, {"path": W+"/l/t"}, {"path": W+"/l/to_dir", "is_dir": False, "type": "symlink"}]})
# ---------------- grep ----------------
tree = [f(W+"/src/app.py", "import os\nprint('hello world')\n# TODO: fix\n"), f(W+"/src/util/helpers.py", "def hello():\n    return 'hello'\n"),
        f(W+"/README.md", "# Hello\nhello there\n"), f(W+"/.github/ci.yml", "run: hello\n"), f(W+"/notes.txt", "nothing here\n"),
        f(W+"/top.py", "hello = 1\n"), f(W+"/.hidden.py", "hello hidden\n")]
case("grep_files_with_matches", "grep", {"pattern": "hello"}, tree, is_error=False)
case("grep_content", "grep", {"pattern": "hello", "output_mode": "content"}, tree,
     structured={"truncated": False})
case("grep_count", "grep", {"pattern": "hello", "output_mode": "count"}, tree)
case("grep_path_subdir", "grep", {"pattern": "hello", "path": "src", "output_mode": "content"}, tree)
case("grep_path_file", "grep", {"pattern": "hello", "path": W+"/README.md", "output_mode": "content"}, tree)
case("grep_no_matches", "grep", {"pattern": "absent"}, tree, is_error=False, structured={"matches": [], "truncated": False})
case("grep_regex_hint", "grep", {"pattern": "foo|bar"}, tree)
case("grep_regex_hint_dotstar", "grep", {"pattern": "hel.*o"}, tree)
case("grep_regex_escape_hint", "grep", {"pattern": "\\d+"}, tree)
case("grep_literal_metachars", "grep", {"pattern": "print('hello", "output_mode": "content"}, tree)
case("grep_max_count_truncated", "grep", {"pattern": "hello", "max_count": 2, "output_mode": "content"}, tree, structured={"truncated": True})
case("grep_max_count_exact", "grep", {"pattern": "hello", "path": W+"/src", "max_count": 3, "output_mode": "count"}, tree, structured={"truncated": False})
case("grep_default_max_count", "grep", {"pattern": "x"}, [{"path": W+"/many.txt", "repeat": "x\n", "times": 1001}], structured={"truncated": True})
case("grep_config_max_count", "grep", {"pattern": "x", "output_mode": "count"}, [{"path": W+"/many.txt", "repeat": "x\n", "times": 10}], limits={"grep_max_count": 4})
case("grep_glob_basename", "grep", {"pattern": "hello", "glob": "*.py"}, tree)
case("grep_glob_path", "grep", {"pattern": "hello", "glob": "src/**/*.py"}, tree)
case("grep_glob_anchored", "grep", {"pattern": "hello", "glob": "/*.py"}, tree)
case("grep_glob_braces", "grep", {"pattern": "hello", "glob": "*.{md,yml}"}, tree)
case("grep_glob_dot_explicit", "grep", {"pattern": "hello", "glob": ".*"}, tree)
case("grep_glob_invalid", "grep", {"pattern": "hello", "glob": "../*.py"}, tree, is_error=True)
case("grep_glob_too_broad", "grep", {"pattern": "hello", "glob": "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"}, tree, is_error=True)
case("grep_path_not_found", "grep", {"pattern": "hello", "path": W+"/nope"}, tree, is_error=True,
     note="deviation: deepagents' grep -r route swallows the failure and says 'No matches found'")
case("grep_denied_path", "grep", {"pattern": "hello", "path": W+"/src"}, tree, deny=[W+"/src"], is_error=True)
case("grep_binary_skipped", "grep", {"pattern": "needle"}, [fb(W+"/bin.dat", b"needle\x00\x01"), f(W+"/t.txt", "a needle\n")])
case("grep_crlf_lines", "grep", {"pattern": "two", "output_mode": "content"}, [f(W+"/c.txt", "one\r\ntwo\r\n")])
case("grep_newline_pattern", "grep", {"pattern": "a\nb"}, [f(W+"/c.txt", "a\nb\n")])
case("grep_output_cap", "grep", {"pattern": "k", "output_mode": "content"}, [{"path": W+"/k.txt", "repeat": ("k" * 199) + "\n", "times": 900}])
case("grep_unicode", "grep", {"pattern": "ümlaut", "output_mode": "content"}, [f(W+"/dir ü/ä'b.txt", "x ümlaut y\n")])
case("grep_symlink_skipped", "grep", {"pattern": "target"}, [f(W+"/real.txt", "target\n"), {"path": W+"/link.txt", "symlink": "real.txt"}])
case("grep_invalid_utf8_line", "grep", {"pattern": "ok", "output_mode": "content"}, [fb(W+"/x.txt", b"ok \xff\xfe here\n")])
# ---------------- glob ----------------
gtree = [f(W+"/main.py", ""), f(W+"/src/app/main.py", ""), f(W+"/src/app/util.py", ""), f(W+"/src/readme.md", ""), f(W+"/.github/workflows/ci.yml", ""),
         f(W+"/.env", ""), f(W+"/.hidden.py", ""), f(W+"/docs/a.txt", ""), f(W+"/docs/b.txt", ""), f(W+"/docs/c.md", ""), f(W+"/x.txt", ""), {"path": W+"/pkg.py", "dir": True},
         f(W+"/config.yml", ""), f(W+"/config.yaml", "")]
case("glob_basename_anywhere", "glob", {"pattern": "*.py"}, gtree, is_error=False)
case("glob_globstar", "glob", {"pattern": "**/*.py"}, gtree)
case("glob_globstar_yml_skips_dot_dirs", "glob", {"pattern": "**/*.yml"}, gtree)
case("glob_bare_yml_enters_dot_dirs", "glob", {"pattern": "*.yml"}, gtree)
case("glob_anchored", "glob", {"pattern": "/*.py"}, gtree)
case("glob_path_pattern", "glob", {"pattern": "src/**/*.py"}, gtree)
case("glob_dotfile_explicit", "glob", {"pattern": ".env"}, gtree)
case("glob_dot_dir_explicit", "glob", {"pattern": ".github/**/*.yml"}, gtree)
case("glob_braces", "glob", {"pattern": "*.{yml,yaml}"}, gtree)
case("glob_braces_nested", "glob", {"pattern": "docs/*.{txt,{md,rst}}"}, gtree)
case("glob_class", "glob", {"pattern": "docs/[ab].txt"}, gtree)
case("glob_class_negated", "glob", {"pattern": "docs/[!a]*"}, gtree)
case("glob_class_caret", "glob", {"pattern": "docs/[^a]*"}, gtree)
case("glob_question", "glob", {"pattern": "?.txt"}, gtree)
case("glob_no_match", "glob", {"pattern": "*.rs"}, gtree, is_error=False, structured={"paths": [], "truncated": False})
case("glob_path_not_found", "glob", {"pattern": "*", "path": W+"/nope"}, gtree, is_error=True)
case("glob_not_a_directory", "glob", {"pattern": "*", "path": W+"/x.txt"}, gtree, is_error=True)
case("glob_invalid_pattern", "glob", {"pattern": "../*.py"}, gtree, is_error=True)
case("glob_too_broad", "glob", {"pattern": "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"}, gtree, is_error=True)
case("glob_files_only", "glob", {"pattern": "*"}, [f(W+"/f.txt", ""), {"path": W+"/d", "dir": True}, {"path": W+"/ln", "symlink": "f.txt"}, {"path": W+"/dangling", "symlink": "none"}, {"path": W+"/dl", "symlink": "d"}])
case("glob_truncated", "glob", {"pattern": "*.txt"}, gtree, limits={"glob_max_matches": 2}, structured={"truncated": True})
case("glob_trailing_slash", "glob", {"pattern": "src/"}, gtree)
case("glob_relative_path_arg", "glob", {"pattern": "*.py", "path": "src"}, gtree)
case("glob_denied_subtree", "glob", {"pattern": "*.txt"}, gtree, deny=[W+"/docs"], structured={"truncated": True})
case("glob_denied_root", "glob", {"pattern": "*.txt", "path": W+"/docs"}, gtree, deny=[W+"/docs"], is_error=True)
case("glob_unicode_names", "glob", {"pattern": "*.txt"}, [f(W+"/ü/ä'b.txt", ""), f(W+"/sp ace/\"q\".txt", ""), f(W+"/nl/a\nb.txt", "")])
# ---------------- upload / download ----------------
case("upload_mixed", "upload", {"files": [
    {"path": W+"/up/a.txt", "content": "hello\n"},
    {"path": "up/bin.dat", "content_base64": base64.b64encode(b"\x00\xff\x01binary").decode()},
    {"path": "../escape", "content": "x"},
    {"path": W+"/up/bad64", "content_base64": "!!!"},
    {"path": W+"/ro/x", "content": "x"},
    {"path": W+"/up/big", "content": "0123456789ABCDEF"},
    {"path": W+"/adir", "content": "x"}]},
    [{"path": W+"/adir", "dir": True}, {"path": W+"/ro", "dir": True}], deny=[W+"/ro"], limits={"upload_max_bytes": 12}, is_error=False,
    structured={"files": [{"path": W+"/up/a.txt", "error": None}, {"path": W+"/up/bin.dat", "error": None}, {"path": "../escape", "error": "invalid_path"},
                          {"path": W+"/up/bad64", "error": "invalid_content"},
                          {"path": W+"/ro/x", "error": "permission_denied"}, {"path": W+"/up/big", "error": "file_too_large"}, {"path": W+"/adir", "error": "is_directory"}]},
    after=[f(W+"/up/a.txt", "hello\n"), fb(W+"/up/bin.dat", b"\x00\xff\x01binary")])
case("upload_both_contents", "upload", {"files": [{"path": W+"/b", "content": "x", "content_base64": "eA=="}, {"path": W+"/c"}]},
     input_valid=False, note="the input schema rejects this over MCP (oneOf); fsops itself reports invalid_content",
     structured={"files": [{"path": W+"/b", "error": "invalid_content"}, {"path": W+"/c", "error": "invalid_content"}]}, after=[{"path": W+"/b", "absent": True, "text": ""}])
case("download_mixed", "download", {"paths": [W+"/d/a.txt", "d/bin.dat", W+"/missing", W+"/d", "../x", W+"/d/big.txt", W+"/priv/k"]},
    [f(W+"/d/a.txt", "text ü\n"), fb(W+"/d/bin.dat", b"\x00\x01\xff"), f(W+"/d/big.txt", "x" * 100), f(W+"/priv/k", "k")], deny=[W+"/priv"], limits={"download_max_bytes": 50},
    is_error=False,
    structured={"files": [{"path": W+"/d/a.txt", "size": 8, "mime_type": "text/plain", "error": None},
                          {"path": W+"/d/bin.dat", "size": 3, "mime_type": "application/octet-stream", "error": None},
                          {"path": W+"/missing", "size": None, "error": "file_not_found"}, {"path": W+"/d", "error": "is_directory"},
                          {"path": "../x", "error": "invalid_path"}, {"path": W+"/d/big.txt", "error": "file_too_large"}, {"path": W+"/priv/k", "error": "permission_denied"}]},
    content=[{"type": "text"}, {"type": "resource", "resource": {"uri": "file:///workspace/d/a.txt", "mimeType": "text/plain", "text": "text ü\n"}},
             {"type": "resource", "resource": {"uri": "file:///workspace/d/bin.dat", "mimeType": "application/octet-stream", "blob": base64.b64encode(b"\x00\x01\xff").decode()}}])
case("download_weird_name", "download", {"paths": [W+"/we ird/it's \"q\"\n.txt"]}, [f(W+"/we ird/it's \"q\"\n.txt", "ok")],
     content=[{"type": "text"}, {"type": "resource", "resource": {"uri": "file:///workspace/we%20ird/it%27s%20%22q%22%0A.txt", "text": "ok"}}])

notes = {
 "grep_glob_basename": "deviation: GNU grep --include would also match .hidden.py; we apply the glob tool's dot rule to grep's filter too",
 "grep_glob_braces": "deviation: GNU grep --include does not expand braces; our one matcher does (the description warns backends differ)",
 "grep_glob_path": "0.7.8's Python route fails here with 'exit code 1' in our reference run; we match the search-root-relative path",
 "grep_glob_anchored": "0.7.8's Python route fails here with 'exit code 1' in our reference run; a leading / anchors to the search root",
 "grep_crlf_lines": "deviation: GNU grep keeps the CR in the line text; the sbx_search contract strips it",
 "grep_newline_pattern": "deviation: grep -e would split the pattern into two; a literal with a newline cannot match one line",
 "grep_max_count_truncated": "files are searched in sorted path order, so which matches survive the cap is deterministic",
 "read_empty_png": "0.7.8 would base64 the reminder text into an image block; we return the reminder",
 "write_parent_is_file": "0.7.8 returns the preflight's Python traceback; we return FilesystemBackend's invalid_path code",
 "ls_basic": "deviation: entries are sorted (deepagents shows scandir order)",
 "read_symlink_contained": "a symlink resolves inside the sandbox's view: the host's /etc/hostname is not reachable",
}
notes.update({
 "grep_glob_invalid": "0.7.8 reports this through its Python route as 'exit code 2' (stderr discarded); we name the problem like glob does",
 "grep_glob_too_broad": "0.7.8's GNU grep route does not expand braces and finds nothing; our matcher refuses more than 1000 alternatives like the glob helper",
 "grep_invalid_utf8_line": "GNU grep in a UTF-8 locale treats the file as binary; we search it and show invalid bytes as U+FFFD",
 "ls_root": "lists the sandbox's own root; the reference comparison does not apply (host root)",
 "read_image_png": "media: deepagents returns only the image block; the text is agentbox's summary, sent as text only when a client cannot take the block",
 "read_audio_wav": "media: the text is agentbox's summary; the audio block carries the data",
 "read_pdf_resource": "media: the text is agentbox's summary; the embedded resource carries the data",
 "read_binary_by_content": "binary by content (invalid UTF-8 in the first 8 KiB): an embedded resource, like deepagents' 'file' block",
})
for k, v in notes.items():
    cases[k]["note"] = v
for name, d in cases.items():
    p = os.path.join(OUT, name)
    os.makedirs(p, exist_ok=True)
    with open(os.path.join(p, "case.json"), "w") as fh:
        json.dump(d, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
print(len(cases), "cases")
