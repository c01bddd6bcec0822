"""The one git layer: every git process the controller starts is started here."""
