"""``python -m serving.cli`` runs the ``crmind`` command (handy from a checkout or worktree)."""

from serving.cli import main

main()
