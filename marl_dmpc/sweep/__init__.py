"""Sweeps: many runs of an example over seeds and settings, on a process pool or Ray.

    python -m marl_dmpc.sweep example_1 --seeds 1-20 --set learning_rate=6e-5,3e-5 \
        --steps 20000 --dir runs/lr
    python -m marl_dmpc.sweep power_system --seeds 1-10 --episodes 100 --backend ray
    python -m marl_dmpc.sweep report runs/lr

:mod:`~marl_dmpc.sweep.plan` says what a sweep runs, :mod:`~marl_dmpc.sweep.task` runs
one run, :mod:`~marl_dmpc.sweep.backends` are the engines, :mod:`~marl_dmpc.sweep.driver`
collects and writes the results, :mod:`~marl_dmpc.sweep.report` tabulates and draws
them. See docs/sweeps.md.
"""
