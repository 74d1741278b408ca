"""Teller: custody and payments backend for a Telegram Mini App wallet."""
