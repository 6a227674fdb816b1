"""Behavioural segments: mixtures of Markov chains and of stages HMMs over customers."""
