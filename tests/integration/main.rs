mod traces;
