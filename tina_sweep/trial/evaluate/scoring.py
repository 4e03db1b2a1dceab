"""Scoring, shared by every backend that grades with our graders (transformers, vLLM): the chat of each problem,
grading each sample into an outcome row, Pass@1, and the result of one benchmark.

Pass@1 with n samples per problem is the mean over problems of the per-problem success rate (the unbiased
pass@k estimator at k = 1). Per-problem outcomes are saved so later statistics (bootstrap CIs, paired tests)
can be computed from them. ``eval.grader`` picks the grader (``strict``: our last-box grader; ``math_verify``:
Tina's LightEval metrics); every result and outcome row names it. A multiple-choice problem (GPQA) is posed with
Tina's GPQA template and graded on its letter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tina_sweep.trial.datasets import Problem
from tina_sweep.trial.grading import grade_samples, math_verify_golds, normalised_gold, why_wrong
from tina_sweep.trial.prompts import chat_messages
from tina_sweep.trial.spec import EvalSpec, PromptSpec


# Tina's GPQA user turn (GPQA_QUERY_TEMPLATE of scripts/eval/run_eval_custom_tasks.py, from simple-evals), filled
# with str.format as Tina does: the question, then the options in the order shown.
MULTIPLE_CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
    "\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)

@dataclass(frozen=True)
class EvalTarget:
    """One model to evaluate: a name, its adapter folder (None: the base model), where outcomes go, and its
    sampling seed (None: the evaluator's)."""

    name: str
    adapter_dir: Path | None
    out_dir: Path
    seed: int | None = None


@dataclass
class BenchmarkResult:
    """Pass@1 on one benchmark, with what it took to get it."""

    benchmark: str
    pass_at_1: float
    problems: int
    samples_per_problem: int
    generated_tokens: int
    wall_seconds: float
    outcomes: list[dict] = field(default_factory=list, repr=False)
    device: str = ""  # where generation ran ("cuda:0", "cpu")
    grader: str = "strict"  # what graded it: "strict", "math_verify", or "lighteval" (LightEval's own metrics)

def pass_at_1(successes_per_problem: list[list[bool]]) -> float:
    """Mean over problems of the fraction of correct samples."""
    if not successes_per_problem:
        return 0.0
    return sum(sum(s) / len(s) for s in successes_per_problem) / len(successes_per_problem)

def problem_messages(problem: Problem, prompt: PromptSpec) -> list[dict[str, str]]:
    """The chat for one problem. A multiple-choice problem's user turn is Tina's GPQA template with its options
    (the prompt's template, instruction and few-shot turns are for free-answer math and are left out; its system
    prompt, if any, is kept); any other problem's is ``chat_messages``'s."""
    if not problem.choices:
        return chat_messages(problem.question, prompt)
    if len(problem.choices) != 4:
        raise ValueError(f"{problem.id}: the multiple-choice template shows 4 options, got {len(problem.choices)}")
    options = dict(zip("ABCD", problem.choices))
    user = {"role": "user", "content": MULTIPLE_CHOICE_TEMPLATE.format(Question=problem.question, **options)}
    return ([{"role": "system", "content": prompt.system}] if prompt.system is not None else []) + [user]

def compared_golds(problem: Problem, grader: str) -> list[str]:
    """Each gold as the grader compares it (``normalised_gold``; math_verify: what math-verify reads from it)."""
    if grader == "strict":
        return [normalised_gold(answer) for answer in problem.answers]
    return [str(parsed[0]) for parsed in math_verify_golds(problem.answers, problem.reference)]

def problem_outcome(problem: Problem, samples: list[str], grader: str, truncated: list[bool] | None = None) -> dict:
    """One line of ``eval/<benchmark>.jsonl``: the problem, its golds (as written and as compared), its samples,
    what was read from each and whether it is correct, and the grader; ``truncated``: which samples stopped at
    max_new_tokens. A multiple-choice problem adds its options in the order shown and its gold letter; strict
    grading adds why each wrong sample is wrong (``reasons``)."""
    correct, extracted = grade_samples(samples, problem.answers, grader, multiple_choice=bool(problem.choices),
                                       reference=problem.reference)
    truncated = truncated or [False] * len(samples)
    outcome = {"id": problem.id, "answers": list(problem.answers), "correct": correct,
               "success_rate": sum(correct) / len(correct), "extracted": extracted, "completions": samples,
               "truncated": truncated, "grader": grader}
    if problem.raw_answer is not None:
        outcome["answer_written"] = problem.raw_answer
    if problem.choices:
        outcome.update(choices=list(problem.choices), gold=problem.answers[0])
        return outcome
    outcome["answers_compared"] = compared_golds(problem, grader)
    if grader == "strict":  # why each wrong sample is wrong: a format failure or a wrong answer
        outcome["reasons"] = [None if ok else why_wrong(box, problem.answers, cut)
                              for ok, box, cut in zip(correct, extracted, truncated)]
    return outcome

def score_benchmark(name: str, problems: list[Problem], samples: list[list[str]], n: int, tokens: int,
                    seconds: float, grader: str = "strict", device: str = "",
                    truncated: list[list[bool]] | None = None) -> BenchmarkResult:
    """Grade n samples per problem with ``grader`` and score the benchmark (every backend but LightEval's);
    ``truncated``: per problem, which samples stopped at max_new_tokens."""
    cut = truncated or [None] * len(problems)
    outcomes = [problem_outcome(problem, texts, grader, flags) for problem, texts, flags in zip(problems, samples, cut)]
    return BenchmarkResult(name, pass_at_1([o["correct"] for o in outcomes]), len(problems), n, tokens, seconds,
                           outcomes, device=device, grader=grader)

def evaluation_prompt(prompt: PromptSpec, spec: EvalSpec) -> PromptSpec:
    """The prompt evaluation uses: ``eval.prompt`` when set (the paper evaluates with its own math template and
    no system prompt), else the trial's training prompt."""
    return spec.prompt if spec.prompt is not None else prompt

def summary(results: list[BenchmarkResult]) -> dict:
    """JSON-ready per-benchmark numbers (without the per-problem outcomes)."""
    return {r.benchmark: {k: v for k, v in asdict(r).items() if k != "outcomes"} for r in results}


def write_outcomes(path: Path, result: BenchmarkResult) -> None:
    """A benchmark's outcome rows, one JSON line per problem (``eval/<benchmark>.jsonl``)."""
    with open(path, "w") as handle:
        for outcome in result.outcomes:
            handle.write(json.dumps(outcome) + "\n")
