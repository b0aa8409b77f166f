"""The template render limits through ``ostruct run`` (issue 10): a hostile template fails with
exit 3 before anything is sent, and the flags change the limits."""

from __future__ import annotations

from cli_support import ADA, run_args

from openai_structured.testing import Reply


def test_a_template_loop_past_the_deadline_exits_3_before_sending(ostruct, server, workdir):
    (workdir / "slow.j2").write_text(
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
    )
    out = ostruct(
        *run_args(server, "--template-timeout", "0.5", "--template-limit",
                  "max_loop_iterations=10000000000", template="slow.j2"),
    )  # fmt: skip
    assert out.code == 3, out.stderr
    assert "--template-timeout" in out.stderr or "--template-limit" in out.stderr
    assert server.requests == []


def test_a_limit_flag_lowers_a_limit_and_a_bad_spec_is_refused(ostruct, server, workdir):
    (workdir / "ranged.j2").write_text("{% for i in range(50) %}{{ i }}{% endfor %} {{ who }}")
    out = ostruct(*run_args(server, "--template-limit", "max_range=10", template="ranged.j2"))
    assert out.code == 3, out.stderr
    assert "max_range" in out.stderr
    assert server.requests == []
    out = ostruct(*run_args(server, "--template-limit", "no_such_limit=1", template="ranged.j2"))
    assert out.code == 3
    assert "no_such_limit" in out.stderr
    server.queue(Reply.json(ADA))
    out = ostruct(*run_args(server, "--template-limit", "max_range=100", template="ranged.j2"))
    assert out.code == 0, out.stderr
    assert out.json() == ADA
