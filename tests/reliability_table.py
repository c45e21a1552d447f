"""docs/reliability.md, generated from the tests' own case lists.

    python -m tests.reliability_table        # rewrite docs/reliability.md

Every row names the tests that inject its fault or try its inputs; the counts are read from
those tests (their case lists, their hypothesis settings), so ``tests/test_reliability_table.py``
fails when the page and the tests disagree, or when a test in these files has no row.
"""

from pathlib import Path

from hypothesis import settings

import analyses
from tests import hypothesis_profiles  # noqa: F401 (registers the profiles)

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "reliability.md"
MODULES = {
    "checkpoint": "tests.models.test_checkpoint_format",
    "fuzz": "tests.test_fuzz",
    "cli": "tests.analyses.test_cli_errors",
    "faults": "tests.interp.test_faults",
    "training": "tests.models.test_train_faults",
    "zoo": "tests.models.test_zoo_faults",
    "threads": "tests.analyses.test_threads",
    "reproducibility": "tests.test_reproducibility",
    "sweeps": "tests.interp.test_parallel",
    "seeds": "tests.analyses.test_seed_spread",
}


def _modules():
    import importlib

    return {key: importlib.import_module(name) for key, name in MODULES.items()}


def _generated(test, profile: str = "ci") -> str:
    """'up to N generated + k pinned' for a hypothesis test under the CI profile."""
    pinned = len(getattr(test, "hypothesis_explicit_examples", []))
    text = f"up to {settings.get_profile(profile).max_examples} generated"
    return text + (f" + {pinned} pinned" if pinned else "")


def _cases(test) -> int:
    """How many cases a parametrized test runs (the product of its parameter lists)."""
    count = 1
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            count *= len(mark.args[1])
    return count


def rows() -> list[tuple[str, str, str, str, list[str]]]:
    """(area, what is injected or tried, cases, what it gets, tests)."""
    m = _modules()
    ck, fz, cl, fa, tr, zo = m["checkpoint"], m["fuzz"], m["cli"], m["faults"], m["training"], m["zoo"]
    th, rp, sw, sd = m["threads"], m["reproducibility"], m["sweeps"], m["seeds"]
    n_analyses = len(analyses.ANALYSES)
    n_bytes = ck.valid_length()
    return [
        ("checkpoint", "files saved by the safetensors library, header lengths through every residue it writes "
         "(multiples of 8 mod 256, 128 among them)",
         f"{len(ck.NAME_LENGTHS)} saves, {len(ck.LIBRARY_RESIDUES)} residues", "saved and loaded equal",
         ["test_models_saved_by_the_library_load_at_every_header_length_it_writes"]),
        ("checkpoint", "unpadded files (as the format allows) at every header length mod 256",
         f"{len(ck.ALL_RESIDUES)} residues", "loaded equal, metadata too",
         ["test_files_load_at_every_header_length_modulo_256"]),
        ("checkpoint", "every truncation of a valid file", f"{n_bytes}", "ValueError: not a safetensors file (why)",
         ["test_every_truncation_is_refused_with_a_message"]),
        ("checkpoint", "every single-bit flip of a valid file", f"{8 * n_bytes}",
         "ValueError, or loaded (a flip in the data changes a value)", ["test_every_single_bit_flip_is_refused_or_loads"]),
        ("checkpoint", "a damaged file whose first bytes look like a pickle's", "1",
         "loaded while valid; once damaged, named as damaged, not as a pickle",
         ["test_a_damaged_file_whose_first_byte_is_0x80_is_not_called_a_pickle"]),
        ("checkpoint", "pickles (protocols " + ", ".join(map(str, ck.PICKLE_PROTOCOLS)) + ") and a torch.save zip",
         f"{len(ck.PICKLE_PROTOCOLS) + 1}", "ValueError naming what the file is; nothing unpickled",
         ["test_a_pickle_of_every_protocol_is_refused_as_a_pickle", "test_a_torch_save_zip_is_refused_as_a_zip"]),
        ("checkpoint", "malformed headers (short, not JSON, NaN, not a dict, too long, past the end, "
         "uncovered data, missing fields)", f"{len(ck.MALFORMED_HEADERS)}", "ValueError naming the problem",
         ["test_malformed_headers_are_named", "test_the_library_agrees_with_the_parser_on_valid_files"]),
        ("checkpoint", "random truncations plus up to 4 byte flips (hypothesis)",
         _generated(fz.test_damaged_checkpoint_bytes_are_refused_or_load),
         "ValueError, or loaded only when untruncated and consistent; never another exception",
         ["test_damaged_checkpoint_bytes_are_refused_or_load"]),
        ("tokenizers", "random corpora and texts: round trips, unseen characters and words, save and load",
         f"4 targets, {_generated(fz.test_char_tokenizer_round_trips_seen_text)} each",
         "exact round trip of what was seen, `<unk>` for the rest",
         ["test_char_tokenizer_round_trips_seen_text", "test_char_tokenizer_maps_unseen_characters_to_unk",
          "test_word_tokenizer_round_trips_what_it_has_seen_and_marks_the_rest",
          "test_tokenizers_save_and_load_unchanged"]),
        ("tokenizers", "token ids outside the vocabulary (negative, too large)",
         _generated(fz.test_decoding_ids_outside_the_vocabulary_is_a_value_error), "ValueError naming the id",
         ["test_decoding_ids_outside_the_vocabulary_is_a_value_error"]),
        ("tokens", "token tensors of every integer and non-integer dtype, 0 to 3 dimensions, lengths 0 to 8 "
         "(n_ctx 6), ids from -3 to 16 (d_vocab 11), logits and loss",
         _generated(fz.test_token_tensors_give_logits_or_a_value_error),
         "finite logits [batch pos d_vocab] and loss, or ValueError", ["test_token_tensors_give_logits_or_a_value_error"]),
        ("patching", "`activation_patching` on a 2-layer Transformer: batches of 1 to 3, clean and corrupted tokens "
         "of random lengths (0 to 7, n_ctx 6; unequal, ids outside the vocabulary, no batch dim), every activation "
         "and random names, both directions and random ones, layers (None, duplicates, any order; empty, negative, "
         "out of range, not ints), metrics returning a scalar or [batch] (last or every position, a float) for "
         "per_example both ways, or [batch + 1], 2-D, a string, None; max_rows",
         _generated(fz.test_patching_returns_its_documented_shape_or_names_the_argument),
         "[layer pos (head_index) (batch)], finite and within 1e-4 of one hooked forward per site; or ValueError "
         "naming a wrong argument", ["test_patching_returns_its_documented_shape_or_names_the_argument"]),
        ("tracing", "`causal_trace` on the same model: prompts of 1 to 6 tokens (and none, 7, two prompts, ids outside "
         "the vocabulary), subject spans (empty, reversed, out of range, not a pair of ints), answer ids or metrics "
         "([samples] over the last or every position; a scalar, [samples + 1], 2-D, a string; both or neither), "
         "kinds (duplicates; empty, unknown, a string), samples, window, max_rows, noise_std (0 to 1e300; negative, "
         "NaN, inf, not a number), seed, both engines",
         _generated(fz.test_tracing_returns_its_documented_frame_or_names_the_argument),
         "kinds x layers x positions rows, finite, the fast engine within 1e-4 of the hooked batches; or ValueError "
         "naming a wrong argument (noise so large that float32 overflows: naming noise_std)",
         ["test_tracing_returns_its_documented_frame_or_names_the_argument"]),
        ("configs", "TransformerConfig from random values of any type",
         _generated(fz.test_transformer_config_is_valid_or_names_the_field),
         "valid (every field of its type), or ValueError naming the field",
         ["test_transformer_config_is_valid_or_names_the_field"]),
        ("configs", "every analysis Config from random values of the declared types (zero, negative, NaN, "
         "empty tuples)", f"{n_analyses} configs, up to {settings.get_profile('ci').max_examples} generated each"
         f" + {len(fz.FOUND)} pinned", "valid, or ValueError naming a field it was given",
         ["test_every_analysis_config_is_valid_or_names_the_field",
          "test_config_errors_the_fuzzing_found_name_their_field"]),
        ("--set", "key=value of every declared type, round trip",
         _generated(fz.test_set_round_trips_every_value_of_the_declared_type), "the same value back",
         ["test_set_round_trips_every_value_of_the_declared_type"]),
        ("--set", "random text for each field type, unknown keys, no '='",
         f"{_generated(fz.test_set_parses_the_declared_type_or_refuses_with_a_message)}; "
         f"{_generated(fz.test_set_with_an_unknown_key_or_no_equals_sign_says_so)}; 4 fixed",
         "the declared type (whole numbers only for ints), or ValueError '--set KEY: ...'",
         ["test_set_parses_the_declared_type_or_refuses_with_a_message",
          "test_set_with_an_unknown_key_or_no_equals_sign_says_so", "test_parse_value_refuses_integers_that_are_not_whole"]),
        ("--set", "random assignments on every analysis Config",
         f"{n_analyses} configs, up to {settings.get_profile('ci').max_examples} generated each",
         "a valid config or ValueError", ["test_set_on_every_analysis_config_is_valid_or_a_value_error"]),
        ("command line", "mistakes: unknown command, option, analysis, preset or zoo subject; bad --set, --seed, "
         "--out, --threads, --workers, --backend, --address, sampling options, spread's --seeds and --into; missing "
         "arguments; --backend ray "
         "without Ray installed", f"{len(cl.BAD_ARGUMENTS)} + 1",
         "one line 'error: ...' on stderr, exit code 2, no traceback",
         ["test_a_mistake_is_one_line_and_exit_code_2", "test_a_bare_command_shows_its_help",
          "test_good_commands_still_exit_0", "test_ray_asked_for_but_not_installed_is_one_line_and_exit_code_2"]),
        ("threads", "the automatic thread count on machines of our making: CPU affinity, /proc/loadavg's running "
         "count (a spike outvoted by the median of three reads), torch's default; the load average where the file is "
         "missing, nothing where neither is", f"{len(th.AUTOMATIC_CASES)} + 2",
         "the CPUs less the other runnable threads, at least 1, at most torch's default",
         ["test_the_automatic_choice_is_the_free_cpus", "test_without_proc_loadavg_the_load_average_counts"]),
        ("threads", "a request, then INTERP_THREADS, over a busy machine; bad requests to choose_threads ("
         + ", ".join(map(repr, th.BAD_COUNTS)) + ") and bad INTERP_THREADS (" + ", ".join(map(repr, th.BAD_ENVIRONMENT))
         + ") through `interp run`", f"1 + {len(th.BAD_COUNTS)} + {len(th.BAD_ENVIRONMENT)}",
         "the request wins, then the variable; ValueError naming --threads; INTERP_THREADS: one line, exit code 2, "
         "no run log", ["test_a_request_wins_then_the_environment", "test_a_bad_request_names_the_option",
                        "test_a_bad_environment_variable_is_one_line_and_exit_code_2"]),
        ("threads", "`interp run params` with --threads 1, with INTERP_THREADS=1, automatic; apply_threads once "
         "torch refuses inter-op threads; apply_threads(1) over BLAS pools of two threads", "5",
         "the analysis runs on the count chosen; the run log's first line says how many and why; no error; "
         "every BLAS pool numpy and scikit-learn load on one thread",
         ["test_interp_run_applies_the_count_before_the_analysis_and_logs_it",
          "test_interp_run_says_what_the_automatic_choice_saw",
          "test_apply_threads_sets_torch_and_skips_interop_threads_once_too_late",
          "test_apply_threads_limits_the_blas_pools_numpy_and_scikit_learn_use"]),
        ("reproducibility", "the quick facts subject trained by `models.train` with the caller on 1 and on 2 torch "
         "threads (TrainConfig.threads=1, the default); the same with threads=None (the caller's count); threads=0",
         "2 + 2 + 1", "bit-identical weights and the caller's count back; with threads=None the weights differ (the "
         "check can fail); ValueError naming threads",
         ["test_training_does_not_depend_on_the_callers_threads",
          "test_threads_none_keeps_the_callers_count_and_can_differ", "test_train_config_threads_is_checked"]),
        ("reproducibility", "`interp run NAME --quick` in fresh processes with fresh zoo caches: twice on the "
         "automatic thread count, then --threads 1 against --threads 2, for " + ", ".join(rp.PRESETS),
         f"{len(rp.PRESETS)} x {len(rp.RUNS)} runs", "identical results.json headline figures (timings aside); "
         "`benchmarks/reproducibility.py` measures every analysis",
         ["test_quick_presets_give_the_same_headline_twice_and_on_1_and_2_threads"]),
        ("reproducibility", "the CPU kernels on machines of our making: x86-64 with AVX512, with AVX2, without AVX2, "
         "ARM; a user's own ATEN_CPU_CAPABILITY; INTERP_KERNELS=native",
         f"{_cases(rp.test_kernels_are_pinned_only_on_x86_with_avx2_and_never_over_the_users_settings)}",
         "ATen, oneDNN and MKL held to AVX2 where the CPU has it, nothing pinned elsewhere or when opted out, "
         "the user's settings kept", ["test_kernels_are_pinned_only_on_x86_with_avx2_and_never_over_the_users_settings"]),
        ("reproducibility", "`interp run params` on the pinned kernels and with INTERP_KERNELS=native; the quick "
         "facts subject's first 12 steps pinned, pinned with MKL told the CPU is AVX2-only, and on torch's own choice",
         f"{_cases(rp.test_interp_run_records_the_kernels_it_ran_on)} + 3",
         "results.json names the kernels run; pinned weights equal on both, and different from torch's own choice "
         "on an AVX512 CPU (the check can fail)",
         ["test_interp_run_records_the_kernels_it_ran_on",
          "test_the_pinned_kernels_train_what_torchs_own_choice_trains_on_an_avx2_cpu_and_differ_where_it_chooses_more"]),
        ("reproducibility", "where training cannot be made reproducible (no AVX2, ARM, INTERP_KERNELS=native): the "
         "full presets of the analyses that train in the run (" + ", ".join(p.name.split("-")[0] for p in sd.COMMITTED)
         + ") over training seeds, committed by `interp spread`; `interp spread diffusion --quick --seeds 2` then a run "
         "of seed 0", f"{len(sd.COMMITTED)} spreads + 1",
         "each committed spread has the preset's config, at least 5 seeds and, for the seed of the committed report, "
         "its figures exactly; the run's report finds the spread, lies inside it and equals its seed's figures",
         ["test_spreads_are_committed_for_the_analyses_that_train_in_the_run",
          "test_a_committed_spread_is_of_the_committed_report",
          "test_spread_command_then_a_run_of_a_measured_seed_reproduces_it"]),
        ("reproducibility", "a report beside a spread: a figure outside its interval, integer and true/false figures, "
         "a figure that never moves, a seed that was measured (reproduced or not), another config, no spread",
         "6", "the section counts the figures inside and names the rest, counts the verdict's values over seeds, says "
         "whether the run reproduced its seed; no section for another config or without a spread",
         ["test_a_continuous_figure_gets_its_prediction_interval",
          "test_integer_and_boolean_figures_are_counted_not_averaged",
          "test_a_figure_that_never_moves_is_inside_only_at_its_value",
          "test_the_section_flags_a_figure_outside_its_spread_and_counts_the_verdicts",
          "test_a_run_of_a_measured_seed_says_whether_it_reproduced_that_seed",
          "test_no_section_for_another_config_or_without_a_spread"]),
        ("sweeps", "a worker process killed (SIGKILL) in the middle of a task, twice in a sweep of 6, on "
         "processes and on Ray", f"{_cases(sw.test_a_killed_worker_has_its_task_run_again)} backends x 2 kills",
         "a new worker runs the task again; every result equal to the serial run's",
         ["test_a_killed_worker_has_its_task_run_again"]),
        ("sweeps", "a worker that dies on every try (retries=0)", "1",
         "SweepError naming the task's inputs and 'its worker died once (last exit code -9)'; the other tasks finish",
         ["test_a_worker_that_keeps_dying_fails_its_task_with_its_inputs"]),
        ("sweeps", "a task that raises, on each backend",
         f"{_cases(sw.test_a_task_that_raises_is_reported_with_its_inputs_and_the_rest_are_kept)}",
         "SweepError with the task's inputs and its exception; the other tasks' results stored",
         ["test_a_task_that_raises_is_reported_with_its_inputs_and_the_rest_are_kept"]),
        ("sweeps", "SIGKILL of a sweep's process during its 4th of 6 tasks, then the same sweep again", "1",
         "the 3 finished tasks are read back, not rerun; results equal an uninterrupted sweep's",
         ["test_an_interrupted_sweep_resumes_without_recomputing_finished_tasks"]),
        ("sweeps", "stored results of every kind (frames with NaN, infinities and str columns, tensors, arrays, "
         "nested tuples and dicts), and results that cannot come back equal",
         f"1 + {_cases(sw.test_the_store_refuses_what_it_cannot_give_back)}",
         "bit-identical after loading (no pickle: JSON and npz); TypeError naming what cannot be stored",
         ["test_the_store_gives_back_every_kind_of_result_bit_for_bit", "test_the_store_refuses_what_it_cannot_give_back"]),
        ("sweeps", "shared inputs larger than what is free in /dev/shm (as in a container's 64 MB default)", "1",
         "the sweep runs serially and says why (with --shm-size to give more); the same results",
         ["test_shared_inputs_too_big_for_dev_shm_run_serially_with_the_same_results"]),
        ("sweeps", "bad tasks: no seed, a negative or boolean seed, two equal tasks, an object in a task",
         f"{_cases(sw.test_bad_tasks_are_refused_before_anything_runs)}", "ValueError or TypeError before any task runs",
         ["test_bad_tasks_are_refused_before_anything_runs"]),
        ("sweeps", "bad backends: an unknown name, an address without Ray, an address where nothing listens, an "
         "address that is not host:port, Ray not installed, joining a second cluster", "6",
         "one-line ValueError saying what to change (the command line: exit code 2, tests/analyses/test_cli_errors.py)",
         ["test_bad_backend_settings_are_one_line_errors", "test_a_process_on_one_ray_cluster_refuses_to_join_another"]),
        ("sweeps", "the same seeded tasks serially, on 2 processes and on Ray; serial on the workers' one thread; "
         "settings from the command line; the same tasks with other shared inputs; workers reused by a second sweep; "
         "the default worker count when memory is short",
         "6", "torch.equal results on every backend (and different seeds give different ones); the caller's threads "
         "back; no stored result read for other inputs; no more workers than 1 GiB each of the memory available",
         ["test_the_three_backends_give_the_same_tensors",
          "test_serial_runs_tasks_on_the_workers_thread_count_and_gives_the_callers_back",
          "test_sweep_settings_choose_the_backend_of_calls_that_do_not",
          "test_sweeps_with_the_same_tasks_but_other_inputs_do_not_share_stored_results",
          "test_workers_stay_up_between_sweeps_and_take_each_sweeps_own_shared_inputs",
          "test_the_default_worker_count_is_the_cpus_the_memory_available_allows"]),
        ("command line", "a bug (an exception escaping a command; an analysis raising)", "2",
         "traceback kept, then where to report it (exit 1; exit 2 with the analysis's traceback in run.log)",
         ["test_a_bug_keeps_its_traceback_and_says_where_to_report_it", "test_a_failing_analysis_says_where_to_report_it"]),
        ("faults", "KeyboardInterrupt inside interp run (in process)", "1",
         "'error: interrupted ...', exit code 130, old report unchanged",
         ["test_ctrl_c_during_a_run_is_exit_code_130_and_keeps_the_old_report"]),
        ("faults", "SIGKILL of a report writer at every line of Report.save and the folder swap",
         f"every line reached (at least {fa.KILL_POINTS_AT_LEAST})", "the old report or the new one, byte for byte",
         ["test_kill_9_at_every_line_of_a_report_write_leaves_the_old_report_or_the_new",
          "test_recover_puts_back_a_folder_left_aside_by_a_killed_writer", "test_the_two_rename_fallback_is_also_complete"]),
        ("faults", "signals to a running `interp run` during its analysis: "
         + ", ".join(s for s, _ in fa.SIGNAL_CASES), f"{len(fa.SIGNAL_CASES)}",
         "SIGINT: one line, exit code 130; both: old report byte for byte, no staging folder; after SIGKILL a rerun completes",
         ["test_a_signal_during_interp_run_keeps_the_old_report"]),
        ("faults", "SIGKILL of a training run at every line of its step-20 checkpoint write (save_checkpoint "
         "and each atomic file write in it), then the same call again",
         f"every line reached (at least {tr.KILL_POINTS_AT_LEAST})",
         "resumes from the newest complete checkpoint; final weights bit-identical to an uninterrupted run",
         ["test_kill_9_at_every_line_of_a_checkpoint_write_then_resume_ends_bit_identical"]),
        ("faults", "SIGKILL of a zoo build as soon as a checkpoint lands (after the first; after the first and "
         "again after the resumed build's next), then a rerun. The build is `zoo.load` of a subject the test "
         "registers, driven in a subprocess: `interp run` builds only the subjects its analyses name",
         f"{len(zo.KILL_CASES)} ({sum(map(len, zo.KILL_CASES))} kills)",
         "the rerun resumes from the last checkpoint; every tensor and the history bit-identical to an "
         "uninterrupted build in another cache; only the finished subject's files left, no checkpoint or temporary",
         ["test_kill_9_of_a_zoo_build_then_a_rerun_ends_bit_identical"]),
        ("faults", "a file-size limit (RLIMIT_FSIZE, standing in for a full disk) while the report is written: "
         "a limit of " + " or ".join(fa.FILE_SIZE_LIMITS.values()),
         f"{len(fa.FILE_SIZE_LIMITS)}", "one line naming --out, 'File too large' and to free some space, exit code 2, "
         "old report and index byte for byte", ["test_a_file_size_limit_is_a_clear_error_and_keeps_the_old_report"]),
        ("faults", "a read-only output folder with a report in it (" + "; ".join(fa.READ_ONLY_CASES) + " read-only), "
         "written by a process that permissions bind: as root, nobody or root without CAP_DAC_OVERRIDE",
         f"{len(fa.READ_ONLY_CASES)}", "one line 'cannot write into --out DIR (Permission denied); make it writable or "
         "choose another folder' before any analysis runs, exit code 2, the folder byte for byte",
         ["test_a_read_only_output_folder_is_a_clear_error_and_keeps_the_old_report"]),
    ]


def render() -> str:
    lines = [
        "# Reliability, measured",
        "",
        "Every fault injected and every class of bad input tried by the tests, how many cases, and",
        "what each gets. Generated by `python -m tests.reliability_table` from the tests' case lists;",
        "`tests/test_reliability_table.py` fails when this page and the tests disagree. Property-based",
        "rows run the CI profile (`tests/conftest.py`); `HYPOTHESIS_PROFILE=dev` runs "
        f"{settings.get_profile('dev').max_examples} examples each.",
        "",
        "| area | injected or tried | cases | gets | tests |",
        "| --- | --- | --- | --- | --- |",
    ]
    files = {key: name.replace(".", "/") + ".py" for key, name in MODULES.items()}
    owner = _owners()
    for area, what, cases, gets, tests in rows():
        where = sorted({files[owner[t]] for t in tests})
        lines.append(f"| {area} | {what} | {cases} | {gets} | {len(tests)} in {', '.join(f'`{w}`' for w in where)} |")
    return "\n".join(lines) + "\n"


def _owners() -> dict[str, str]:
    """Test function name -> the key of the module defining it."""
    return {name: key for key, module in _modules().items() for name in dir(module) if name.startswith("test_")}


def tests_without_a_row() -> list[str]:
    named = {t for *_, tests in rows() for t in tests}
    return sorted(set(_owners()) - named)


if __name__ == "__main__":
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
