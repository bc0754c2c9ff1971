"""Simulated OSB gateways: OpenADR 2.0b VENs with household DERs, in fleets."""
