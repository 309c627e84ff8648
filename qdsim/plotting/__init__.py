"""Figures (the only matplotlib importer): phase diagram, g2, decays, Zeeman fans.

Modules: `phase` (forward model), `photons` (g2, decay, traces), `zeeman` (fans, linewidths).
Every function takes an optional `ax`, returns the matplotlib Figure, and uses the Agg backend
when no display is available.
"""
