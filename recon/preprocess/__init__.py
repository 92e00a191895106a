"""Preprocessing stages that turn raw measurements into what a spec holds (tomography: counts -> sinograms)."""
