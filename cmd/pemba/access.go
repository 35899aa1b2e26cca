package main

import "github.com/spf13/cobra"

// accessCmd groups the analyst's questions about the whole graph; each
// subcommand file adds its verbs to it in init.
var accessCmd = &cobra.Command{
	Use:   "access",
	Short: "Analyse access: who can access a resource, what a subject can access, what expires, what changed",
}

func init() { rootCmd.AddCommand(accessCmd) }
