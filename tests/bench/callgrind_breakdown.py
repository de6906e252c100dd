#!/usr/bin/env python3
"""Where a client's user-space instructions go, per probe, from two callgrind runs.

Usage: callgrind_breakdown.py BIG.out SMALL.out PROBES [TOP]
  BIG.out and SMALL.out: callgrind files of the same client at N and N/10 probes;
  PROBES: the difference in probes between them. Subtracting the small run removes start-up
  (dynamic linking, static initialisers) so every figure is a marginal cost per probe.
  SMALL.out may be "-": BIG.out then holds only the probes' part already (a dump taken with
  callgrind_control after zeroing the counters, as run_load.sh does with the exporter).
Prints: instructions per probe by category, the TOP functions by self cost, and the calls per
probe of a few functions that say how much work there is (allocations, locks, clock reads).
"""
import collections
import re
import subprocess
import sys


def self_costs(path):
    """file:function -> self instructions, from callgrind_annotate."""
    if path == "-":
        return collections.Counter()
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", "--inclusive=no", path],
        capture_output=True, text=True, check=True).stdout
    costs, total = collections.Counter(), None
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" in line:
            total = int(m.group(1).replace(",", ""))
        elif m:
            costs[m.group(2)] += int(m.group(1).replace(",", ""))
    # A dump taken while the program runs charges the whole total, as "self", to each frame that
    # was on the stack when the counters were zeroed (main, the event loop): not real costs.
    return collections.Counter({k: v for k, v in costs.items() if total is None or v < total})


def call_counts(path):
    """(caller, callee) -> number of calls, from the callgrind file's calls= lines."""
    names, counts, caller, callee = {}, collections.Counter(), None, None
    if path == "-":
        return counts
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                name = names.get(m.group(2), m.group(2))
                if m.group(1) == "cfn":
                    callee = name
                else:
                    caller = name
            elif line.startswith("calls=") and callee is not None:
                counts[(caller, callee)] += int(line.split("=")[1].split()[0])
    return counts


def calls_to(counts, pattern):
    """caller -> calls to functions matching `pattern`."""
    out = collections.Counter()
    for (caller, callee), n in counts.items():
        if re.search(pattern, callee):
            out[strip_templates(caller or "?").replace("boost::asio::", "asio::")] += n
    return out


def strip_templates(name):
    """Drops template arguments and parameter lists: names are matched, not signatures."""
    name = name.replace("(anonymous namespace)", "{anon}")
    previous = None
    while previous != name:
        previous = name
        name = re.sub(r"<[^<>]*>", "", name)
        name = re.sub(r"\([^()]*\)", "", name)
    return name


def split(key):
    """'file:function [object]' -> (file, function without template arguments)."""
    key = re.sub(r" \[[^\]]*\]$", "", key)
    m = re.match(r"^([^:]+):(?!:)(.*)$", key)  # a path has no ':', a function's '::' is kept
    path, function = (m.group(1), m.group(2)) if m else ("", key)
    return path, strip_templates(function)


# First match wins. "fn" matches the function name, "file" the source file (where inlined code
# came from), "any" both.
CATEGORIES = [
    ("probe: transcript (record, printable)", r"Session::record|printable|TranscriptLine", "fn"),
    ("probe: ProbeResult teardown", r"~ProbeResult|~EhloCapabilities|~BannerInfo", "fn"),
    ("probe: parse_reply", r"parse_reply", "fn"),
    ("probe: parse_banner", r"parse_banner|is_valid_domain|in_domain", "fn"),
    ("probe: parse_ehlo", r"parse_ehlo|ehlo\.cpp", "any"),
    ("probe: peer address text (inet_ntop, printf)",
     r"format_endpoint|inet_ntop|vfprintf|_IO_|printf|to_string|to_chars|_itoa", "any"),
    ("probe: make_address (inet_pton)", r"inet_pton|make_address|address_v[46]", "any"),
    ("clock reads (steady_clock::now)", r"clock_gettime|steady_clock::now", "any"),
    ("malloc/free (operator new/delete)", r"malloc|_int_free|^free$|operator new|operator delete",
     "any"),
    ("asio recycling allocator", r"thread_info_base", "any"),
    ("mutex lock/unlock", r"pthread_mutex|posix_mutex|conditionally_enabled_mutex", "any"),
    ("asio any_executor (type-erased executor)",
     r"any_executor|execution_work_guard|asio_prefer_fn|asio_require_fn|io_context\.hpp", "any"),
    ("beast basic_stream (per-op timeouts)", r"boost/beast", "file"),
    ("asio coroutines (awaitable, co_spawn)", r"awaitable|co_spawn|redirect_error", "any"),
    ("asio reactor, scheduler, timers, sockets",
     r"boost/asio|boost/system|boost/smart_ptr|boost/optional|boost::asio::|boost::system::", "any"),
    ("probe: Session coroutines (own code)", r"smtp::", "fn"),
    ("libc string/memory functions", r"mem|str", "any"),
]


def category(key):
    path, function = split(key)
    for name, pattern, where in CATEGORIES:
        target = {"fn": function, "file": path, "any": path + ":" + function}[where]
        if re.search(pattern, target):
            return name
    return "other"


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    big_path, small_path, probes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) == 5 else 15
    big, small = self_costs(big_path), self_costs(small_path)
    per_probe = {k: (big.get(k, 0) - small.get(k, 0)) / probes for k in set(big) | set(small)}
    total = sum(per_probe.values())

    by_category = collections.Counter()
    for key, cost in per_probe.items():
        by_category[category(key)] += cost
    print(f"{total:9.0f}          user-space instructions per probe")
    for name, cost in by_category.most_common():
        if abs(cost) >= 0.005 * total:
            print(f"{cost:9.0f}  {100 * cost / total:5.1f}%  {name}")

    print(f"\ntop {top} functions by self cost (instructions per probe):")
    for key, cost in sorted(per_probe.items(), key=lambda kv: -kv[1])[:top]:
        path, function = split(key)
        function = function.replace("boost::asio::", "asio::")
        print(f"{cost:9.0f}  {function[:110]}  [{path.rsplit('/', 1)[-1]}]")

    big_calls, small_calls = call_counts(big_path), call_counts(small_path)
    print("\ncalls per probe:")
    for pattern in (r"^malloc$", r"^pthread_mutex_lock", r"^clock_gettime", r"^epoll_wait$",
                    r"^timerfd_settime$", r"^epoll_ctl$"):
        calls = sum(calls_to(big_calls, pattern).values()) - sum(
            calls_to(small_calls, pattern).values())
        print(f"{calls / probes:9.1f}  {pattern.strip('^$')}")

    print("\nwho allocates (calls to operator new per probe, by caller):")
    big_new, small_new = calls_to(big_calls, r"^operator new"), calls_to(small_calls, r"^operator new")
    rows = {k: (big_new[k] - small_new.get(k, 0)) / probes for k in big_new}
    for caller, n in sorted(rows.items(), key=lambda kv: -kv[1]):
        if n >= 0.5:
            print(f"{n:9.1f}  {caller[:110]}")


if __name__ == "__main__":
    main()
