"""The turn engine: one `BotRunner` answers live traffic, `/try`, tests and evaluations, with a
turn made of small steps composed once (`chain.build_chain`)."""
