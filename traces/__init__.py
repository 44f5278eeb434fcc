"""The shipped bandwidth traces (see README.md here), installed with cdnlab as package data
beside the scenarios that name them (`traces/<file>`)."""
